"""frpc's admin API (``webServer``): ``GET /api/status`` and ``GET /healthz``, with Basic auth."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler

from ..net.listen import bind_socket, resolve_listen
from ..proto.addr import join_host_port

if TYPE_CHECKING:
    from ..config.base import WebServerConfig
    from .service import Client

log = logging.getLogger("aiofrp.client.admin")


class AdminServer:
    def __init__(self, client: Client, cfg: WebServerConfig, stop: asyncio.Event) -> None:
        self.client = client
        self.cfg = cfg
        self.stop_event = stop
        self.app = web.Application(middlewares=[self._auth])
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/api/status", self.api_status)
        self.app.router.add_get("/api/config", self.api_config)
        self.app.router.add_post("/api/stop", self.api_stop)
        self.runner: web.AppRunner | None = None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz" or not (self.cfg.user or self.cfg.password):
            return await handler(request)
        expected = base64.b64encode(f"{self.cfg.user}:{self.cfg.password}".encode()).decode()
        got = request.headers.get("Authorization", "")
        if not (got.startswith("Basic ") and hmac.compare_digest(got[6:].strip(), expected)):
            await asyncio.sleep(0.2)
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="Restricted"'},
                                text="Unauthorized\n")
        return await handler(request)

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        # one socket opened as Go opens it ("::"/"0.0.0.0" accept IPv4 and IPv6), see net/listen.py
        addr = self.cfg.addr or "127.0.0.1"
        sock = bind_socket(addr, self.cfg.port, resolved=await resolve_listen(addr))
        site = web.SockSite(self.runner, sock)
        await site.start()
        log.info("admin server listen on %s", join_host_port(self.cfg.addr or "127.0.0.1", self.cfg.port))

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def api_status(self, request: web.Request) -> web.Response:
        # compact, as Go's encoding/json writes it
        return web.json_response(self.client.status(), dumps=lambda o: json.dumps(o, separators=(",", ":")))

    async def api_config(self, request: web.Request) -> web.Response:
        try:
            text = await asyncio.to_thread(_read_text, self.client.config_path)
            return web.Response(text=text)
        except OSError as exc:
            return web.Response(status=400, text=f"read config file error: {exc}\n")

    async def api_stop(self, request: web.Request) -> web.Response:
        asyncio.get_running_loop().call_later(0.1, self.stop_event.set)
        return web.Response(status=200)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()
