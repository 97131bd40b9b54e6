"""``cli.common.tune_malloc``: frps and frpc keep their large transient buffers on glibc's heap."""

from __future__ import annotations

import asyncio
import os
import platform
import sys

import pytest

from aiofrp.cli import common


def test_respects_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576")
    assert common.tune_malloc() is False
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1048576")
    assert common.tune_malloc() is False


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_sets_glibc_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    for k in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(k)
    assert common.tune_malloc() is True


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_malloc_trim_gives_free_heap_pages_back() -> None:
    common.tune_malloc()  # the 8 MB trim threshold: free pages stay in the heap until trimmed
    keep = [bytes(600) for _ in range(20_000)]  # 12 MB of malloc'd (not pymalloc) blocks
    del keep[:10_000]  # 6 MB free below the blocks still in use: nothing free at the top
    assert common.malloc_trim() is True
    del keep


def test_run_service_trims_once_start_up_is_over(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def trim() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(common, "STARTUP_TRIM_DELAY", 0.05)
    monkeypatch.setattr(common, "malloc_trim", trim)

    async def main(stop: asyncio.Event) -> int:
        assert calls == []  # not at the start: once the delay has passed
        deadline = asyncio.get_running_loop().time() + 10
        while not calls:
            assert asyncio.get_running_loop().time() < deadline, "no malloc_trim after the delay"
            await asyncio.sleep(0.01)
        return 7

    try:
        assert common.run_service(main) == 7
    finally:
        asyncio.set_event_loop(None)
    assert calls == [1]
