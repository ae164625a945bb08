#!/usr/bin/env python3
"""Line and branch coverage per libshop module and per service, from an lcov tracefile.

Usage: tests/coverage/summary.py build/cov/coverage.info
Prints a Markdown table (the one docs/TESTING.md shows): one row per libshop module (its .c and
.h together), one per service (all of services/<name>/), and the totals of each group.
"""
import os
import sys


def read_tracefile(path):
    """{source file: [lines found, lines hit, branches found, branches hit]}"""
    files, current = {}, None
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition(":")
            if key == "SF":
                current = files.setdefault(value, [0, 0, 0, 0])
            elif current is not None and key in ("LF", "LH", "BRF", "BRH"):
                current[("LF", "LH", "BRF", "BRH").index(key)] += int(value)
    return files


def group_of(path):
    """("libshop", "json") for libshop/json.c or .h, ("service", "cart") for services/cart/*."""
    parts = os.path.relpath(path).split(os.sep)
    if parts[0] == "libshop":
        return "libshop", os.path.splitext(parts[-1])[0]
    if parts[0] == "services" and len(parts) > 2:
        return "service", parts[1]
    return None


def percent(hit, found):
    return "%5.1f%% (%d/%d)" % (100.0 * hit / found, hit, found) if found else "    - (0/0)"


def main(path):
    groups = {}
    for source, counts in read_tracefile(path).items():
        key = group_of(source)
        if key:
            acc = groups.setdefault(key, [0, 0, 0, 0])
            for i, n in enumerate(counts):
                acc[i] += n
    print("| %-20s | %-20s | %-20s |" % ("module", "lines", "branches"))
    print("|%s|%s|%s|" % ("-" * 22, "-" * 22, "-" * 22))
    for kind, title in (("libshop", "libshop/"), ("service", "services/")):
        total = [0, 0, 0, 0]
        for (k, name), (lf, lh, brf, brh) in sorted(groups.items()):
            if k != kind:
                continue
            total = [a + b for a, b in zip(total, (lf, lh, brf, brh))]
            print("| %-20s | %-20s | %-20s |" % (title + name, percent(lh, lf), percent(brh, brf)))
        lf, lh, brf, brh = total
        print("| %-20s | %-20s | %-20s |" % ("**%s total**" % title.rstrip("/"), percent(lh, lf), percent(brh, brf)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
