/*
 * A TLB-hostile kernel for mmusim's sample traces: touch one word in every
 * 4 KiB page of a 128 MiB region (demand paging, sequential page walk), then
 * read 100,000 words at pseudo-random offsets in it (a working set far larger
 * than any TLB's reach). The LCG is Knuth's MMIX constants; seeded, so the
 * address sequence is the same on every run. READS overrides the number of
 * random reads (-DREADS=...).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef READS
#define READS 100000
#endif

int main(void) {
    const size_t bytes = (size_t)128 << 20;
    const size_t words = bytes / sizeof(uint64_t);
    uint64_t *table = calloc(words, sizeof(uint64_t));
    if (table == NULL) {
        return 1;
    }
    for (size_t i = 0; i < words; i += 4096 / sizeof(uint64_t)) {
        table[i] = i;
    }
    uint64_t x = 2026, sum = 0;
    for (int i = 0; i < READS; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        sum += table[(x >> 33) % words];
    }
    printf("%llu\n", (unsigned long long)sum);
    free(table);
    return 0;
}
