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
from typing import TYPE_CHECKING, Self

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


class Watchdog:
    """The per-input deadline, in CPU time, without a system call per input.

    One recurring ``ITIMER_PROF`` tick (a quarter of the deadline) checks whether the input being
    run is still the one it saw at the previous tick; after ``timeout`` of CPU time on one input it
    raises :class:`Hang` inside the target. Per input, the loop only bumps a counter. CPU time, not
    wall time: a parser stuck in a loop burns CPU, while a process the scheduler starves on a loaded
    machine does not (a wall-clock deadline reported those as hangs).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tick = timeout / 4
        self.current = 0  # bumped before each input
        self.active = False  # a target is running (Hang is raised only then)
        self._seen = -1
        self._spent = 0.0
        self._old: object = None

    def _on_tick(self, _sig: int, _frame: FrameType | None) -> None:
        if not self.active:
            return
        if self.current != self._seen:
            self._seen, self._spent = self.current, 0.0
            return
        self._spent += self.tick
        if self._spent >= self.timeout - 1e-9:
            self._spent = 0.0
            raise Hang

    def __enter__(self) -> Self:
        self._old = signal.signal(signal.SIGPROF, self._on_tick)
        signal.setitimer(signal.ITIMER_PROF, self.tick, self.tick)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, self._old)  # type: ignore[arg-type]


def _run(target: Target, data: bytes, dog: Watchdog) -> Finding | None:
    dog.current += 1
    dog.active = True
    try:
        target.fn(data)
    except target.errors:
        return None
    except Hang:
        return Finding("hang", f"no answer within {dog.timeout:g} s of CPU time", data, traceback.format_exc())
    except MemoryError as exc:
        return Finding("memory", _signature(exc), data, traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - any other exception is the finding
        return Finding("crash", _signature(exc), data, traceback.format_exc())
    finally:
        dog.active = False
    return None


def run_one(target: Target, data: bytes, timeout: float) -> Finding | None:
    """Run one input; None when the target returned or raised one of its documented errors."""
    with Watchdog(timeout) as dog:
        return _run(target, data, dog)


class Mutator:
    """AFL-style havoc on the corpus: flips, interesting integers, inserts, deletes, splices.

    Random numbers come from ``int(random() * n)`` rather than ``randrange``: five times cheaper,
    and the mutator is most of the per-input cost of a fast parser."""

    def __init__(self, rng: random.Random, pool: list[bytes]) -> None:
        self.rng = rng
        self.rand = rng.random
        self.pool = pool or [b""]

    def _below(self, n: int) -> int:
        return int(self.rand() * n)

    def __call__(self) -> bytes:
        pool = self.pool
        buf = bytearray(pool[int(self.rand() * len(pool))])
        step = self._step
        for _ in range(1 << int(self.rand() * 5)):
            step(buf)
        return bytes(buf[:MAX_LEN]) if len(buf) > MAX_LEN else bytes(buf)

    def _step(self, buf: bytearray) -> None:
        rand = self.rand
        op = int(rand() * 9)
        n = len(buf)
        if op == 0 and n:
            buf[int(rand() * n)] ^= 1 << int(rand() * 8)
        elif op == 1 and n:
            buf[int(rand() * n)] = _BYTES[int(rand() * len(_BYTES))]
        elif op == 2:
            width = _WIDTHS[int(rand() * 4)]
            value = INTERESTING_INTS[int(rand() * len(INTERESTING_INTS))] & ((1 << (8 * width)) - 1)
            if rand() < 0.3:
                value = (value + int(rand() * 5) - 2) % (1 << (8 * width))
            raw = value.to_bytes(width, "big" if rand() < 0.5 else "little")
            at = int(rand() * (n + 1))
            buf[at : at + width] = raw
        elif op == 3:
            at = int(rand() * (n + 1))
            buf[at:at] = self.rng.randbytes(1 + int(rand() * 16))
        elif op == 4 and n:
            at = int(rand() * n)
            del buf[at : at + 1 + int(rand() * 63)]
        elif op == 5 and n:
            at = int(rand() * n)
            chunk = buf[at : at + 1 + int(rand() * 255)]
            to = int(rand() * (n + 1))
            buf[to:to] = chunk * _REPEATS[int(rand() * 4)]
        elif op == 6:
            other = self.pool[int(rand() * len(self.pool))]
            if other:
                at = int(rand() * len(other))
                buf[int(rand() * (n + 1)) :] = other[at:]
        elif op == 7 and n:
            del buf[int(rand() * n) :]
        elif op == 8 and n:
            buf[int(rand() * n)] = int(rand() * 256)


_BYTES = (0, 0xFF, 0x7F, 0x80, 0x20, 0x0A, 0x0D, 0x3A, 0x7B)
_WIDTHS = (1, 2, 4, 8)
_REPEATS = (1, 1, 2, 16)


def fuzz_random(target: Target, seconds: float, seed: int, timeout: float = 2.0,
                max_findings: int = 5, max_inputs: int = 0) -> Stats:
    """Mutate the corpus for ``seconds`` (or until ``max_inputs`` when given); the seeds and
    regression inputs first, unmutated. One process, one loop: no subprocess, task or system
    call per input (the deadline is a :class:`Watchdog`)."""
    stats = Stats(target.name, "random")
    pool = corpus(target)
    seen: set[str] = set()
    start = time.monotonic()
    deadline = start + seconds
    inputs = 0
    with Watchdog(timeout) as dog:
        batch = list(pool)
        mutate = Mutator(random.Random(seed), pool)
        while True:
            for data in batch:
                found = _run(target, data, dog)
                if found is not None and found.summary not in seen:
                    seen.add(found.summary)
                    stats.findings.append(found)
            inputs += len(batch)
            if (time.monotonic() >= deadline or len(stats.findings) >= max_findings
                    or (max_inputs and inputs >= max_inputs)):
                break
            batch = [mutate() for _ in range(256)]
    stats.inputs = inputs
    stats.seconds = time.monotonic() - start
    return stats


def fuzz_atheris(target: Target, seconds: float, out: Path, timeout: float = 5.0,
                 max_inputs: int = 0) -> None:  # pragma: no cover
    """Hand the process to libFuzzer for ``seconds``, or until ``max_inputs`` inputs ran (``-runs``);
    libFuzzer exits and tools/fuzzer.py reads its summary."""
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
    if max_inputs:
        args.insert(1, f"-runs={max_inputs}")
    atheris.Setup(args, one_input)
    atheris.Fuzz()


def save_finding(out: Path, target: str, finding: Finding) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{target}-{finding.kind}-{hashlib.sha1(finding.data).hexdigest()[:12]}"
    path.write_bytes(finding.data)
    path.with_suffix(".txt").write_text(finding.trace)
    return path
