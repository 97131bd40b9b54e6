"""Line coverage of src/aiofrp per package, from the combined data of ``make coverage``.

Run as ``python tests/support/covsummary.py`` in the repository (after ``coverage combine``);
files never imported count as fully missed (``source_pkgs`` makes coverage list them).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import defaultdict


def package_of(path: str) -> str:
    parts = path.replace(os.sep, "/").split("/")
    i = parts.index("aiofrp")
    rest = parts[i + 1:]
    return "aiofrp/" + rest[0] if len(rest) > 1 else "aiofrp (top level)"


def main() -> int:
    import coverage

    cov = coverage.Coverage()
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "coverage.json")
        cov.json_report(outfile=out)
        with open(out) as f:
            report = json.load(f)
    stmts: dict[str, int] = defaultdict(int)
    covered: dict[str, int] = defaultdict(int)
    for path, data in report["files"].items():
        pkg = package_of(path)
        stmts[pkg] += data["summary"]["num_statements"]
        covered[pkg] += data["summary"]["covered_lines"]
    width = max(len(p) for p in stmts)
    print(f"{'package':<{width}}  {'stmts':>6}  {'miss':>6}  {'cover':>6}")
    for pkg in sorted(stmts):
        s, c = stmts[pkg], covered[pkg]
        print(f"{pkg:<{width}}  {s:>6}  {s - c:>6}  {100 * c / s if s else 100:>5.1f}%")
    total_s, total_c = sum(stmts.values()), sum(covered.values())
    print(f"{'TOTAL':<{width}}  {total_s:>6}  {total_s - total_c:>6}  {100 * total_c / total_s:>5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
