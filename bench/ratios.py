#!/usr/bin/env python3
"""Ratios for bench/RESULTS.md from the raw medians bench/run.sh collected
("label tool first|noop seconds [hosts]" per line): how many times faster
drover is than each peer, per workload and run kind, and W2's growth."""
import sys

rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {}
for r in rows:
    key = (r[0], r[1], r[2], r[4] if len(r) > 4 else "")
    med[key] = float(r[3])

print("| workload | peer | first run: peer / drover | no-op run: peer / drover |")
print("|---|---|---|---|")
for (label, tool, kind, n), v in sorted(med.items()):
    if tool == "drover" or kind != "first":
        continue
    d1 = med.get((label, "drover", "first", n))
    d2 = med.get((label, "drover", "noop", n))
    p2 = med.get((label, tool, "noop", n))
    if d1 and d2 and p2:
        where = f"{label}{' ' + n + ' hosts' if n else ''}"
        print(f"| {where} | {tool} | {v / d1:.1f}× | {p2 / d2:.1f}× |")
sizes = sorted({int(n) for (label, tool, _, n) in med if label == "w2" and tool == "drover"})
if len(sizes) > 1:
    print()
    print("W2 growth (drover, median wall time relative to the smallest size):")
    print()
    print("| hosts | first run | no-op run |")
    print("|---|---|---|")
    for n in sizes:
        f = med[("w2", "drover", "first", str(n))] / med[("w2", "drover", "first", str(sizes[0]))]
        o = med[("w2", "drover", "noop", str(n))] / med[("w2", "drover", "noop", str(sizes[0]))]
        print(f"| {n} | {f:.1f}× | {o:.1f}× |")
