"""The in-process tier: ``async def`` tests run on a fresh uvloop per test (the loop frps and frpc
use in production), bounded in time, with no task and no socket left behind.

Why not pytest-asyncio: this runner is ~40 lines and does what the tier needs and the plugin
does not: uvloop (``aiofrp.cli.common.new_event_loop``) without a loop-policy fixture, a
per-test deadline that fails with the stack of the test AND of every other task still running
(so a hang is a readable failure in seconds, not a pytest-timeout kill after minutes), and a
leak check after teardown that runs inside the same loop. No dependency to pin or keep in step
with pytest's major versions.

Fixtures
  loop     the test's event loop (set as the current loop; closed at the end).
  inproc   a :class:`support.inproc.InProc` on that loop; its teardown stops every frps/frpc,
           service and connection it made and fails the test if a task or socket is left.

Marker
  ``@pytest.mark.loop_timeout(SECONDS)``: the test's deadline (default ``TEST_DEADLINE``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from support.inproc import InProc, describe_tasks

from aiofrp.cli.common import new_event_loop

TEST_DEADLINE = 15.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "loop_timeout(seconds): deadline of an in-process async test")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = new_event_loop()
    asyncio.set_event_loop(lp)
    try:
        yield lp
    finally:
        try:
            lp.run_until_complete(lp.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            lp.close()


@pytest.fixture
def inproc(loop: asyncio.AbstractEventLoop) -> Iterator[InProc]:
    h = InProc()
    loop.run_until_complete(h.begin())
    try:
        yield h
    finally:
        loop.run_until_complete(h.aclose())  # every wait in it is bounded


async def _bounded(coro: Coroutine[Any, Any, None], deadline: float) -> None:
    me = asyncio.current_task()
    try:
        async with asyncio.timeout(deadline) as cm:
            await coro
    except TimeoutError as exc:
        if not cm.expired():
            raise
        others = [t for t in asyncio.all_tasks() if t is not me]
        raise AssertionError(
            f"test did not finish within {deadline}s (its stack is the traceback above); "
            f"{len(others)} other task(s) were running:\n{describe_tasks(others)}"
        ) from exc


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    loop = pyfuncitem.funcargs.get("loop")
    if not isinstance(loop, asyncio.AbstractEventLoop):
        raise pytest.UsageError(f"{pyfuncitem.nodeid}: an async test needs the 'loop' or 'inproc' fixture")
    marker = pyfuncitem.get_closest_marker("loop_timeout")
    deadline = float(marker.args[0]) if marker is not None else TEST_DEADLINE
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    loop.run_until_complete(_bounded(fn(**kwargs), deadline))
    return True

