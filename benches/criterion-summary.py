#!/usr/bin/env python3
"""Reads `cargo bench` (criterion) output on stdin and prints one line per
benchmark: name, median time per iteration, and per packet for batches of
64 (the benches here measure one batch of 64 per iteration)."""
import re
import sys

text = sys.stdin.read()
unit = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
for m in re.finditer(r"^(\S+)\s*\n?\s*time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text, re.M):
    name, val, u = m.group(1), float(m.group(2)), m.group(3)
    ns = val * unit[u]
    print(f"{name:32} {ns:10.1f} ns/batch {ns / 64:8.1f} ns/packet")
