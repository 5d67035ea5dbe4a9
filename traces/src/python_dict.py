# A dictionary workload for mmusim's sample traces: insert 30,000 integer keys
# scattered over 0..100002, then look up every third key in that range.
d = {}
for i in range(30000):
    d[i * 7919 % 100003] = i
s = 0
for k in range(0, 100003, 3):
    s += d.get(k, 0)
