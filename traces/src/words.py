# Deterministic input text for the sort and gzip sample traces: 20,000 random
# lower-case words of 4 to 12 letters, one per line (seeded, so every run of
# this script writes the same bytes).
import random
import sys

random.seed(2026)
out = sys.stdout
for _ in range(20000):
    n = random.randint(4, 12)
    out.write("".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)) + "\n")
