"""frpc's wait between failed logins (client/service.py: retry_delay) against Go's
``wait.NewFastBackoffManager`` with the options of client/service.go (v0.65.0): 1 s doubled, up to
10 % jitter on each step (compounding), capped at 10 s before the first login and 20 s after."""

from __future__ import annotations

from aiofrp.client.service import retry_delay


def schedule(cap: float, rand: float, n: int = 7) -> list[float]:
    out, delay = [], 0.0
    for _ in range(n):
        delay = retry_delay(delay, cap, lambda: rand)
        out.append(round(delay, 6))
    return out


def test_without_jitter() -> None:
    assert schedule(20.0, 0.0) == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]
    assert schedule(10.0, 0.0) == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]


def test_most_jitter_compounds() -> None:
    # Go's Jitter(d, 0.1) = d + rand·0.1·d, and the next step doubles the jittered wait
    assert schedule(20.0, 1.0) == [2.2, 4.84, 10.648, 20.0, 20.0, 20.0, 20.0]


def test_jitter_stays_within_ten_percent() -> None:
    import random

    rng = random.Random(7)
    delay = 0.0
    for _ in range(50):
        prev = delay
        delay = retry_delay(prev, 20.0, rng.random)
        base = (prev or 1.0) * 2
        assert min(base, 20.0) <= delay <= min(base * 1.1, 20.0)
