"""Fuzz aiofrp's parsers: ``make fuzz`` (long campaign) and ``make fuzz-smoke`` (a few seconds each).

    python tools/fuzzer.py [--seconds S] [--inputs N] [--jobs J] [--engine auto|atheris|random] [--seed N]
                           [--out DIR] [TARGET ...]
    python tools/fuzzer.py --list

``--seconds`` is the time budget per target; with ``--inputs`` (random engine) a target stops
earlier once it has run that many inputs. ``--jobs`` runs that many targets at once. The campaign
behind the README figures: ``nice -n 19 python tools/fuzzer.py --engine random --inputs 1000000
--seconds 900 --jobs 2``.

Each target runs in its own process with its address space capped (``--memory-mb``), so a declared
length that is trusted ends as a finding, not as a machine out of memory. ``auto`` uses atheris
(coverage-guided, ``pip install -e '.[fuzz]'``) when it imports, else the seeded mutation fuzzer in
tests/fuzz/engine.py. Findings are written to ``--out`` (input + traceback); copy the input into
tests/fuzz/corpus/TARGET/ once fixed, so every ``make test`` replays it. Exit status 1 on any finding.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzz.engine import fuzz_atheris, fuzz_random, limit_memory, save_finding

if TYPE_CHECKING:
    from fuzz.targets import Target


def targets(instrument: bool = False) -> dict[str, Target]:
    """The targets; with ``instrument``, aiofrp is imported under atheris's coverage hook."""
    if instrument:
        import atheris

        with atheris.instrument_imports(include=["aiofrp"]):
            from fuzz.targets import TARGETS
    else:
        from fuzz.targets import TARGETS
    return TARGETS

RESULT = re.compile(r"^RESULT (\S+) (\S+) (\d+) ([\d.]+) (\d+)$", re.MULTILINE)
LIBFUZZER_DONE = re.compile(r"Done (\d+) runs in (\d+) second")


def has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def child(args: argparse.Namespace) -> int:
    """One target in this process (started by main)."""
    target = targets(instrument=args.engine == "atheris")[args.child]
    out = Path(args.out)
    if args.engine == "atheris":
        limit_memory(args.memory_mb * 2)  # libFuzzer's own -rss_limit_mb is the finer bound
        fuzz_atheris(target, args.seconds, out, max_inputs=args.inputs)
        return 0  # not reached: libFuzzer exits
    limit_memory(args.memory_mb)
    stats = fuzz_random(target, args.seconds, args.seed, max_inputs=args.inputs)
    for f in stats.findings:
        path = save_finding(out, target.name, f)
        print(f"FINDING {target.name} {f.kind}: {f.summary} -> {path}\n{f.trace}", flush=True)
    print(f"RESULT {target.name} random {stats.inputs} {stats.seconds:.1f} {len(stats.findings)}", flush=True)
    return 1 if stats.findings else 0


def run_target(name: str, args: argparse.Namespace, engine: str) -> tuple[str, int, float, int, str]:
    cmd = [sys.executable, __file__, "--child", name, "--engine", engine, "--seconds", str(args.seconds),
           "--seed", str(args.seed), "--out", args.out, "--memory-mb", str(args.memory_mb),
           "--inputs", str(args.inputs)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds * 3 + 120, check=False)
    text = proc.stdout + proc.stderr
    if engine == "random":
        m = RESULT.search(proc.stdout)
        if m is None:
            return engine, 0, time.monotonic() - start, 1, text  # the child itself died: a finding
        return engine, int(m.group(3)), float(m.group(4)), int(m.group(5)), text
    m = LIBFUZZER_DONE.search(text)
    runs = int(m.group(1)) if m else int((re.findall(r"stat::number_of_executed_units: (\d+)", text) or ["0"])[-1])
    crashed = proc.returncode != 0
    return engine, runs, time.monotonic() - start, int(crashed), text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help="targets to run (default: all)")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", "60")))
    ap.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    ap.add_argument("--inputs", type=int, default=0, help="stop a target after this many inputs")
    ap.add_argument("--jobs", type=int, default=1, help="targets run at once")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "fuzz-findings"))
    ap.add_argument("--memory-mb", type=int, default=1024, help="address-space cap per target process")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.list:
        print("\n".join(targets()))
        return 0
    if args.child:
        return child(args)
    names = list(targets())
    unknown = [t for t in args.targets if t not in names]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; --list shows them")
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if has_atheris() else "random"
    elif engine == "atheris" and not has_atheris():
        ap.error("atheris is not installed: pip install -e '.[fuzz]'")
    print("| target | engine | inputs | seconds | findings |\n|---|---|---:|---:|---:|", flush=True)
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        runs = {pool.submit(run_target, name, args, engine): name for name in args.targets or names}
        for done in concurrent.futures.as_completed(runs):
            name = runs[done]
            used, inputs, seconds, findings, text = done.result()
            print(f"| {name} | {used} | {inputs:,} | {seconds:.0f} | {findings} |", flush=True)
            if findings:
                failed += 1
                print(text[-4000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
