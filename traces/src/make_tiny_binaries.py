"""Writes the tiny binary sample traces in traces/tiny/ from the record lists
below, with struct.pack: a second implementation of the ChampSim layouts and
of mmusim's binary format, independent of mmusim's own code.

Run from the repository root: /usr/bin/python3.11 traces/src/make_tiny_binaries.py
"""
import struct

# (ip, source addresses, destination addresses): the instructions of
# traces/tiny/hand.lackey. ChampSim has no sizes and no modify: the modify
# is a load and a store of the same address.
INSTRUCTIONS = [
    (0x401000, [0x7FFD0000], []),
    (0x401003, [], [0x7FFD0008]),
    (0x401007, [0x601040], [0x601040]),
    (0x401FFE, [0x600FFC], []),
    (0x7F0012345678, [], []),
]


def champsim_standard(ip, sources, destinations):
    dst = (destinations + [0, 0])[:2]
    src = (sources + [0, 0, 0, 0])[:4]
    # ip, is_branch, branch_taken, 2 destination and 4 source registers,
    # 2 destination and 4 source memory addresses: 64 bytes.
    return struct.pack("<QBB2B4B2Q4Q", ip, 0, 0, 0, 0, 0, 0, 0, 0, *dst, *src)


def champsim_cloudsuite(ip, sources, destinations, asid):
    dst = (destinations + [0, 0, 0, 0])[:4]
    src = (sources + [0, 0, 0, 0])[:4]
    # ip, branch bytes, 4+4 registers, padding to 24, 4 destination and
    # 4 source addresses, 2 asid bytes, padding to 96.
    head = struct.pack("<QBB4B4B6x", ip, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return head + struct.pack("<4Q4Q2B6x", *dst, *src, asid & 0xFF, asid >> 8)


# mmusim binary records: (kind, address, size); kind 0 fetch, 1 load,
# 2 store, 3 modify. The same nine references as hand.lackey.
MMUSIM_RECORDS = [
    (0, 0x401000, 3), (1, 0x7FFD0000, 8), (0, 0x401003, 4), (2, 0x7FFD0008, 8),
    (0, 0x401007, 5), (3, 0x601040, 4), (0, 0x401FFE, 4), (1, 0x600FFC, 8),
    (0, 0x7F0012345678, 2),
]


def mmusim(records, description):
    desc = description.encode()
    header_len = (48 + len(desc) + 15) // 16 * 16
    instructions = sum(1 for kind, _, _ in records if kind == 0)
    header = b"MMUSIMTR" + struct.pack("<HHIQQI12x", 1, 16, header_len, len(records), instructions, len(desc))
    header += desc
    header += b"\0" * (header_len - len(header))
    body = b"".join(struct.pack("<QHHHBB", addr, size, 0, 0, kind, 0) for kind, addr, size in records)
    return header + body


with open("traces/tiny/hand.champsim", "wb") as f:
    f.write(b"".join(champsim_standard(*i) for i in INSTRUCTIONS))
with open("traces/tiny/hand-cloudsuite.champsim", "wb") as f:
    f.write(b"".join(champsim_cloudsuite(*i, asid=0x0102) for i in INSTRUCTIONS))
with open("traces/tiny/hand.mmt", "wb") as f:
    f.write(mmusim(MMUSIM_RECORDS, "hand-written by traces/src/make_tiny_binaries.py"))
