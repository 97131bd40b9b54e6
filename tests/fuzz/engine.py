"""The fuzz engines: a seeded mutation fuzzer (always there) and atheris (coverage-guided, libFuzzer).

Both run one target in the current process; ``tools/fuzzer.py`` starts one process per target with
an address-space limit, so a parser that trusts a declared length dies of MemoryError there (a
finding) instead of taking the machine down.
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # aiofrp is imported by targets.py, after atheris's import hook is in place
    from .targets import Target

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
"""Regression inputs, one folder per target: every finding lands here and is replayed by make test."""

MAX_LEN = 1 << 16
INTERESTING_INTS = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
                    0x80000000, 0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)


class Hang(BaseException):
    """An input took longer than the per-input deadline (BaseException: a target's ``except
    Exception`` must not swallow it)."""


@dataclass
class Finding:
    kind: str  # "crash" | "hang" | "memory"
    summary: str
    data: bytes
    trace: str


@dataclass
class Stats:
    target: str
    engine: str
    inputs: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)


def corpus(target: Target) -> list[bytes]:
    """The target's seeds and its regression inputs."""
    inputs = list(target.seeds())
    folder = CORPUS / target.name
    if folder.is_dir():
        inputs += [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()]
    return inputs


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space (a length taken from the input cannot allocate the machine)."""
    size = megabytes << 20
    resource.setrlimit(resource.RLIMIT_AS, (size, size))


def _signature(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb) if "aiofrp" in f.filename), "?")
    return f"{type(exc).__name__} at {where}"


def run_one(target: Target, data: bytes, timeout: float) -> Finding | None:
    """Run one input; None when the target returned or raised one of its documented errors."""

    def on_alarm(_sig: int, _frame: FrameType | None) -> None:
        raise Hang

    # CPU time, not wall time: a parser stuck in a loop burns CPU, while a process the scheduler
    # starves on a loaded machine does not (a wall-clock deadline reported those as hangs)
    old = signal.signal(signal.SIGPROF, on_alarm)
    signal.setitimer(signal.ITIMER_PROF, timeout)
    try:
        target.fn(data)
    except target.errors:
        return None
    except Hang:
        return Finding("hang", f"no answer within {timeout:g} s of CPU time", data, traceback.format_exc())
    except MemoryError as exc:
        return Finding("memory", _signature(exc), data, traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - any other exception is the finding
        return Finding("crash", _signature(exc), data, traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)
    return None


class Mutator:
    """AFL-style havoc on the corpus: flips, interesting integers, inserts, deletes, splices."""

    def __init__(self, rng: random.Random, pool: list[bytes]) -> None:
        self.rng = rng
        self.pool = pool or [b""]

    def __call__(self) -> bytes:
        rng = self.rng
        buf = bytearray(rng.choice(self.pool))
        for _ in range(1 << rng.randrange(5)):
            self._step(buf)
        return bytes(buf[:MAX_LEN])

    def _step(self, buf: bytearray) -> None:
        rng = self.rng
        op = rng.randrange(9)
        n = len(buf)
        if op == 0 and n:
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            buf[rng.randrange(n)] = rng.choice((0, 0xFF, 0x7F, 0x80, 0x20, 0x0A, 0x0D, 0x3A, 0x7B))
        elif op == 2:
            width = rng.choice((1, 2, 4, 8))
            value = rng.choice(INTERESTING_INTS) & ((1 << (8 * width)) - 1)
            if rng.random() < 0.3:
                value = (value + rng.randrange(-2, 3)) % (1 << (8 * width))
            raw = value.to_bytes(width, rng.choice(("big", "little")))
            at = rng.randrange(n + 1)
            buf[at : at + width] = raw
        elif op == 3:
            at = rng.randrange(n + 1)
            buf[at:at] = rng.randbytes(rng.randrange(1, 17))
        elif op == 4 and n:
            at = rng.randrange(n)
            del buf[at : at + rng.randrange(1, 64)]
        elif op == 5 and n:
            at = rng.randrange(n)
            chunk = buf[at : at + rng.randrange(1, 256)]
            to = rng.randrange(n + 1)
            buf[to:to] = chunk * rng.choice((1, 1, 2, 16))
        elif op == 6:
            other = rng.choice(self.pool)
            if other:
                at = rng.randrange(len(other))
                buf[rng.randrange(n + 1) :] = other[at:]
        elif op == 7 and n:
            del buf[rng.randrange(n) :]
        elif op == 8 and n:
            at = rng.randrange(n)
            buf[at] = rng.randrange(256)


def fuzz_random(target: Target, seconds: float, seed: int, timeout: float = 2.0,
                max_findings: int = 5) -> Stats:
    """Mutate the corpus for ``seconds``; the seeds and regression inputs first, unmutated."""
    stats = Stats(target.name, "random")
    pool = corpus(target)
    seen: set[str] = set()

    def check(data: bytes) -> None:
        stats.inputs += 1
        found = run_one(target, data, timeout)
        if found is not None and found.summary not in seen:
            seen.add(found.summary)
            stats.findings.append(found)

    start = time.monotonic()
    for data in pool:
        check(data)
    mutate = Mutator(random.Random(seed), pool)
    deadline = start + seconds
    while time.monotonic() < deadline and len(stats.findings) < max_findings:
        for _ in range(64):
            check(mutate())
    stats.seconds = time.monotonic() - start
    return stats


def fuzz_atheris(target: Target, seconds: float, out: Path, timeout: float = 5.0) -> None:  # pragma: no cover
    """Hand the process to libFuzzer for ``seconds`` (it exits; tools/fuzzer.py reads its summary)."""
    import atheris  # the optional [fuzz] extra

    seeds_dir = out / f"{target.name}-corpus"
    seeds_dir.mkdir(parents=True, exist_ok=True)
    for data in corpus(target):
        (seeds_dir / hashlib.sha1(data).hexdigest()).write_bytes(data)

    errors = target.errors

    def one_input(data: bytes) -> None:
        try:
            target.fn(data)
        except errors:
            pass

    args = [sys.argv[0], f"-max_total_time={int(seconds)}", f"-timeout={int(timeout)}", "-rss_limit_mb=2048",
            f"-artifact_prefix={out}{os.sep}{target.name}-", "-print_final_stats=1", str(seeds_dir)]
    atheris.Setup(args, one_input)
    atheris.Fuzz()


def save_finding(out: Path, target: str, finding: Finding) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{target}-{finding.kind}-{hashlib.sha1(finding.data).hexdigest()[:12]}"
    path.write_bytes(finding.data)
    path.with_suffix(".txt").write_text(finding.trace)
    return path
