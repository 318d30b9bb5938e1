#!/usr/bin/env python3
"""README.md's plugins.conf reference must be what `okegw config-keys --markdown` prints from the
key table (core/base/conf.c), so the two cannot drift apart.

Compares the `| key | default | meaning |` tables under the "## Configuration reference" heading
with the generated ones, in order. With --write, replaces those tables in README.md by the
generated ones (the prose around them stays)."""
import argparse
import difflib
import subprocess
import sys

HEADER = "| key | default | meaning |"


def section_bounds(lines):
    """(first, end) line indexes of the reference section: its heading up to the next '## '."""
    start = next((i for i, l in enumerate(lines) if l.startswith("## Configuration reference")), None)
    if start is None:
        sys.exit("README.md has no '## Configuration reference' heading")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, end


def tables(lines, lo=0, hi=None):
    """[(first, end)] of each key table in lines[lo:hi]: the header line and the rows after it."""
    hi = len(lines) if hi is None else hi
    found, i = [], lo
    while i < hi:
        if lines[i].rstrip() == HEADER:
            j = i + 1
            while j < hi and lines[j].startswith("|"):
                j += 1
            found.append((i, j))
            i = j
        else:
            i += 1
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--okegw", required=True)
    ap.add_argument("--readme", required=True)
    ap.add_argument("--write", action="store_true", help="regenerate README.md's tables")
    a = ap.parse_args()

    out = subprocess.run([a.okegw, "config-keys", "--markdown"], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    gen = [out[s:e] for s, e in tables(out)]
    if len(gen) != 2:
        sys.exit("okegw config-keys --markdown printed %d key tables, expected 2" % len(gen))

    with open(a.readme, encoding="utf-8") as f:
        lines = f.read().split("\n")
    lo, hi = section_bounds(lines)
    have = tables(lines, lo, hi)
    if len(have) != len(gen):
        sys.exit("README.md's configuration reference has %d key tables, expected %d"
                 % (len(have), len(gen)))

    if a.write:
        for (s, e), g in reversed(list(zip(have, gen))):
            lines[s:e] = g
        with open(a.readme, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        print("README.md: configuration reference regenerated")
        return 0

    bad = 0
    for (s, e), g in zip(have, gen):
        if lines[s:e] != g:
            bad += 1
            sys.stdout.writelines(difflib.unified_diff(
                [l + "\n" for l in lines[s:e]], [l + "\n" for l in g],
                "README.md (line %d)" % (s + 1), "okegw config-keys --markdown"))
    if bad:
        print("\nREADME.md's configuration reference differs from the key table; regenerate it with\n"
              "  tests/conf/check_readme.py --okegw build/okegw --readme README.md --write")
        return 1
    print("README.md's configuration reference matches the key table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
