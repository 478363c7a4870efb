#!/usr/bin/python3
"""Per-packet figures from a criterion run of a stage bench whose cases
time one 64-packet batch and whose `baseline` case is the batch's
header restore alone: usage:
    cargo bench -p nfv-benches --bench upf 2>&1 | python3 benches/per-packet.py upf
prints each case's (median - baseline) / 64 in ns per packet."""
import re
import sys

group = sys.argv[1] if len(sys.argv) > 1 else "upf"
units = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6}
medians = {}
for m in re.finditer(r"^(%s/\S+)\s*\n?\s*time:\s+\[\S+ \S+ (\S+) (\S+)" % re.escape(group), sys.stdin.read(), re.M):
    medians[m.group(1)] = float(m.group(2)) * units[m.group(3)]
base = medians.pop("%s/baseline" % group, 0.0)
print("%s/baseline %.1f ns per batch" % (group, base))
for case, t in medians.items():
    print("%s %.1f ns/packet" % (case, (t - base) / 64))
