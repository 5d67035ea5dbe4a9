#!/usr/bin/env bash
# Regenerates the real sample traces in traces/ from the programs in traces/src.
# Not run by CI or the tests: the committed files are the data, this script is
# their provenance. Needs valgrind, gcc (with static glibc, and gcc-multilib for
# the 32-bit trace), /usr/bin/python3.11,
# coreutils sort, gzip, xz and zstd. Valgrind's output differs a little between
# machines and versions (addresses of the loader and stack), so a rerun makes
# similar traces, not byte-identical ones; the counts in traces/README.md are
# those of the committed files.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lackey=(valgrind --tool=lackey --trace-mem=yes)

/usr/bin/python3.11 src/words.py > "$work/words.txt"
head -n 1000 "$work/words.txt" > "$work/words1000.txt"
head -c 8000 "$work/words.txt" > "$work/words8k.txt"

# sort: a whole run of coreutils sort over 1,000 words.
LC_ALL=C "${lackey[@]}" --log-file="$work/sort.lackey" sort "$work/words1000.txt" > /dev/null
zstd -q -19 -f "$work/sort.lackey" -o sort.lackey.zst

# gzip: a whole run of gzip -9 over 8,000 bytes of words.
"${lackey[@]}" --log-file="$work/gzip.lackey" gzip -9 -c "$work/words8k.txt" > /dev/null
xz -9 -c "$work/gzip.lackey" > gzip.lackey.xz

# python-dict: the interpreter's startup is ~29M references, so this is a window
# of 1,000,000 lines from the dictionary phase, starting at the first
# instruction line after line 60,000,000 of valgrind's log.
"${lackey[@]}" --log-file="$work/python.lackey" /usr/bin/python3.11 -S -I src/python_dict.py
awk 'NR > 60000000 && (started || /^I/) { started = 1; print; if (++n == 1000000) exit }' \
    "$work/python.lackey" | gzip -9 -n > python-dict.lackey.gz

# randaccess32: the same kernel built for 32-bit x86 (gcc-multilib) with
# 20,000 reads, for machines with 32-bit page tables.
gcc -m32 -O2 -static -DREADS=20000 -o "$work/randaccess32" src/randaccess.c
"${lackey[@]}" --log-file="$work/randaccess32.lackey" "$work/randaccess32" > /dev/null
zstd -q -19 -f "$work/randaccess32.lackey" -o randaccess32.lackey.zst

# randaccess: a whole run of the static random-access kernel.
gcc -O2 -static -o "$work/randaccess" src/randaccess.c
"${lackey[@]}" --log-file="$work/randaccess.lackey" "$work/randaccess" > /dev/null
zstd -q -19 -f "$work/randaccess.lackey" -o randaccess.lackey.zst
