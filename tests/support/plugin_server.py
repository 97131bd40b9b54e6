"""A server manage plugin for tests (frp §7.8): an aiohttp service on 127.0.0.1, on its own
event-loop thread (so both in-process tests and process tests can use it), over HTTP or HTTPS
(a self-signed certificate: frps must run with ``tlsVerify = false``).

Every request is recorded in :attr:`MockPlugin.calls` (path, query, headers, raw body, decoded
JSON) before it is answered. The answer for an op is :attr:`MockPlugin.rules` ``[op]`` applied to
the request's content: a response dict (see :func:`allow`, :func:`reject`, :func:`rewrite`), or
one of the bad-plugin behaviours :data:`GARBAGE` (not JSON), :data:`ERROR_500`, :data:`SLOW`
(sleep :attr:`MockPlugin.delay` first, then allow) or :data:`HANG_UP` (close without an
answer), or a :class:`Raw` answer (any status and body). Ops without a rule are allowed unchanged.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

from .httpd import tls_server_context
from .ports import LOCALHOST


@dataclass(frozen=True)
class Raw:
    """An answer sent as is: any status, any body (``b""``: an empty one), any Content-Type."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/json"


Answer = dict[str, Any] | str | Raw
Rule = Callable[[dict[str, Any]], Answer]

GARBAGE = "garbage"
ERROR_500 = "500"
SLOW = "slow"
HANG_UP = "hang up"


def allow(_content: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"reject": False, "unchange": True}


def reject(reason: str) -> Rule:
    return lambda _content: {"reject": True, "reject_reason": reason}


def rewrite(change: Callable[[dict[str, Any]], None]) -> Rule:
    """Answer the content after ``change`` edited it in place (``unchange = false``)."""

    def rule(content: dict[str, Any]) -> dict[str, Any]:
        change(content)
        return {"reject": False, "unchange": False, "content": content}

    return rule


def fixed(answer: Answer) -> Rule:
    return lambda _content: answer


@dataclass(frozen=True)
class Call:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def op(self) -> str:
        return str(self.json["op"])

    @property
    def content(self) -> dict[str, Any]:
        content = self.json["content"]
        assert isinstance(content, dict)
        return content


class MockPlugin:
    def __init__(self, name: str = "mock", *, tls: bool = False, path: str = "/handler") -> None:
        self.name = name
        self.tls = tls
        self.path = path
        self.port = 0
        self.rules: dict[str, Rule] = {}
        self.delay = 5.0
        self.calls: list[Call] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"plugin-{name}", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def addr(self) -> str:
        """What ``[[httpPlugins]] addr`` should say: ``127.0.0.1:port`` or ``https://127.0.0.1:port``."""
        return f"https://{LOCALHOST}:{self.port}" if self.tls else f"{LOCALHOST}:{self.port}"

    def toml(self, *ops: str, tls_verify: bool = False) -> str:
        """The ``[[httpPlugins]]`` block for frps."""
        lines = [
            "\n[[httpPlugins]]", f'name = "{self.name}"', f'addr = "{self.addr}"', f'path = "{self.path}"',
            "ops = [" + ", ".join(f'"{op}"' for op in ops) + "]",
        ]
        if tls_verify:
            lines.append("tlsVerify = true")
        return "\n".join(lines) + "\n"

    def calls_of(self, op: str) -> list[Call]:
        return [c for c in list(self.calls) if c.op == op]

    # -- the service --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        call = Call(request.path, dict(request.query), dict(request.headers), body, time.monotonic())
        self.calls.append(call)
        try:
            op = call.op
            content = call.content
        except (ValueError, KeyError, AssertionError):
            return web.Response(status=400, text="bad request")
        answer = self.rules.get(op, allow)(content)
        if answer == GARBAGE:
            return web.Response(text="<html>this is not JSON</html>", content_type="text/html")
        if answer == ERROR_500:
            return web.Response(status=500, text="internal error")
        if answer == SLOW:
            await asyncio.sleep(self.delay)
            answer = allow()
        if answer == HANG_UP:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if isinstance(answer, Raw):
            return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)
        if isinstance(answer, str):
            return web.Response(text=answer, content_type="application/json")
        return web.json_response(answer)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        ctx = None
        if self.tls:
            with tempfile.TemporaryDirectory() as d:
                ctx, _ = tls_server_context(d, "plugin")
        site = web.TCPSite(self._runner, LOCALHOST, 0, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
            self._runner = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
