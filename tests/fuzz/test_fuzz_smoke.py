"""Fuzz smoke in make test: every target for a few seeded seconds, and every regression input replayed.

The long campaign is ``make fuzz`` (tools/fuzzer.py, atheris when installed); see README "Reliability".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .engine import CORPUS, Stats, corpus, fuzz_random, run_one
from .targets import TARGETS, Target

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fuzzer.py"
SMOKE_SECONDS = os.environ.get("FUZZ_SMOKE_SECONDS", "2")


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz_smoke(name: str, tmp_path: Path) -> None:
    """A few seconds of seeded mutations in a memory-capped process: no crash, hang or blow-up."""
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--engine", "random", "--seconds", SMOKE_SECONDS, "--seed", "1",
         "--out", str(tmp_path), name],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith(f"| {name} |"))
    inputs = int(row.split("|")[3].replace(",", ""))
    assert inputs > len(corpus(TARGETS[name])), f"only the corpus ran: {row}"


@pytest.mark.parametrize(
    "path", sorted(p for p in CORPUS.glob("*/*") if p.is_file()), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_regression_input(path: Path) -> None:
    """Every input a fuzzer once broke a parser with is answered with the documented error now."""
    target = TARGETS[path.parent.name]
    assert run_one(target, path.read_bytes(), timeout=5) is None


def test_every_corpus_folder_names_a_target() -> None:
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} <= set(TARGETS)


def _bad(data: bytes) -> None:
    if data[:1] == b"c":
        raise KeyError("crash")
    if data[:1] == b"h":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pass
    if data[:1] == b"m":
        bytearray(1 << 50)
    raise ValueError("documented")


@pytest.mark.parametrize(("seed", "kind"), [(b"c", "crash"), (b"h", "hang"), (b"m", "memory")])
def test_the_engine_reports_what_it_must(seed: bytes, kind: str) -> None:
    """The harness can fail: a crash, a hang and an unbounded allocation are each found."""
    target = Target("bad", _bad, (ValueError,), lambda: [seed])
    stats: Stats = fuzz_random(target, seconds=0.5, seed=1, timeout=0.3)
    assert [f.kind for f in stats.findings][:1] == [kind]
    assert run_one(target, b"x", timeout=0.3) is None  # the documented error is no finding
