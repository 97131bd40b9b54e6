"""frpc's admin API and web UI (``webServer``), Go's ``client/admin_api.go`` (0.65) and
``client/api_router.go`` (0.68): Basic auth on everything but ``/healthz``, optional HTTPS
(``webServer.tls``, auth in ``net/webauth.py``), the UI under ``/static/`` (from the package, or ``webServer.assetsDir``).

Routes of frp 0.65 answer errors as 0.65 does (plain text); the routes frp added in 0.68
(``/api/proxy/{name}/config``, ``/api/visitor/{name}/config``, ``/api/store/*``) answer them as
0.68 does (JSON ``{"Code": N, "Msg": "..."}``). ``POST /api/verify`` is aiofrp's own (the UI's
"validate before save").
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..net.listen import bind_socket, resolve_listen
from ..net.webauth import BasicAuth
from ..net.webgo import file_server_redirect, go_headers, go_redirect, go_router
from ..proto.addr import join_host_port
from ..proto.sniff import detect_content_type
from .config_manager import ApiError, ConfigManager

if TYPE_CHECKING:
    from ..config.base import WebServerConfig
    from .service import Client

log = logging.getLogger("aiofrp.client.admin")

UI_DIR = Path(__file__).parent / "ui"
MAX_BODY = 1 << 20
"""Request bodies above 1 MiB get 413 (Go reads any size)."""


def _dumps(o: object) -> str:
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)  # compact, as Go's encoding/json


def _bool_param(value: str) -> bool:
    """Go's strconv.ParseBool (an unparsable value is false, as Go ignores the error)."""
    return value in ("1", "t", "T", "TRUE", "true", "True")


def _text_error(exc: ApiError) -> web.Response:
    return web.Response(status=exc.status, text=exc.message)


def _json_error(exc: ApiError) -> web.Response:
    return web.Response(status=exc.status, content_type="application/json",
                        text=_dumps({"Code": exc.status, "Msg": exc.message}) + "\n")


def _json(o: object) -> web.Response:
    return web.Response(content_type="application/json", text=_dumps(o) + "\n")


def server_ssl_context(cfg: WebServerConfig) -> ssl.SSLContext | None:
    """``webServer.tls``: HTTPS with certFile/keyFile (like Go, no client certificates)."""
    if cfg.tls is None:
        return None
    from ..net.tls import server_context

    return server_context(cfg.tls.cert_file, cfg.tls.key_file)


class AdminServer:
    def __init__(self, client: Client, cfg: WebServerConfig, stop: asyncio.Event) -> None:
        self.client = client
        self.cfg = cfg
        self.stop_event = stop
        self.manager = ConfigManager(client)
        self.assets = Path(cfg.assets_dir) if cfg.assets_dir else UI_DIR
        # Go's Basic auth (401 after 200 ms, constant-time), plus aiofrp's guard shared with the frps
        # dashboard: wrong passwords logged, 10 from one address in 5 min -> 429 for 60 s
        self.auth = BasicAuth(cfg.user, cfg.password, what="admin API")
        # Go's router (a path no route serves: its 404 before auth), then the auth
        router = go_router(MAX_BODY, f"request body too large (limit {MAX_BODY} bytes)\n")
        self.app = web.Application(middlewares=[router, self.auth.middleware], client_max_size=MAX_BODY)
        self.app.on_response_prepare.append(go_headers)
        r = self.app.router
        # Go's methods: /healthz and / take any, the rest their own (HEAD gets 405)
        r.add_route("*", "/healthz", self.healthz)
        r.add_get("/api/status", self.api_status, allow_head=False)
        r.add_get("/api/config", self.api_get_config, allow_head=False)
        r.add_put("/api/config", self.api_put_config)
        r.add_post("/api/verify", self.api_verify)
        r.add_get("/api/reload", self.api_reload, allow_head=False)
        r.add_post("/api/stop", self.api_stop)
        r.add_get("/api/proxy/{name}/config", self._entry("proxy"), allow_head=False)
        r.add_get("/api/visitor/{name}/config", self._entry("visitor"), allow_head=False)
        if client.store is not None:  # as Go: the store routes exist only with store.path
            for kind, plural in (("proxy", "proxies"), ("visitor", "visitors")):
                base = f"/api/store/{plural}"
                r.add_get(base, self._store_list(kind), allow_head=False)
                r.add_post(base, self._store_change("create", kind))
                r.add_get(base + "/{name}", self._store_get(kind), allow_head=False)
                r.add_put(base + "/{name}", self._store_change("update", kind))
                r.add_delete(base + "/{name}", self._store_change("delete", kind))
        r.add_get("/favicon.ico", self.favicon, allow_head=False)
        r.add_get("/static/{path:.*}", self.static, allow_head=False)
        r.add_route("*", "/", self.index)
        self.runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        ssl_ctx = server_ssl_context(self.cfg)  # ssl.SSLError / OSError for unusable cert files
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        # one socket opened as Go opens it ("::"/"0.0.0.0" accept IPv4 and IPv6), see net/listen.py
        addr = self.cfg.addr or "127.0.0.1"
        sock = bind_socket(addr, self.cfg.port, resolved=await resolve_listen(addr))
        site = web.SockSite(self.runner, sock, ssl_context=ssl_ctx)
        await site.start()
        log.info("admin server listen on %s%s", join_host_port(addr, self.cfg.port), " (https)" if ssl_ctx else "")

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    # -- frp 0.65 routes -----------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    # Go logs every call of its 0.65 routes at the info level (client/admin_api.go), so do we

    async def api_status(self, request: web.Request) -> web.Response:
        log.info("http request [/api/status]")
        text = _dumps(self.client.status())
        log.info("http response [/api/status]")
        return web.Response(content_type="application/json", text=text)

    async def api_get_config(self, request: web.Request) -> web.Response:
        log.info("http get request [/api/config]")
        try:
            content = await self.manager.read_file()
        except ApiError as exc:
            log.info("http get response [/api/config], code [%d]", exc.status)
            return _text_error(exc)
        log.info("http get response [/api/config], code [200]")
        # the file's bytes, typed as Go's net/http types what a handler writes (DetectContentType;
        # an empty file: nothing written, no Content-Type)
        return web.Response(body=content, headers={"Content-Type": detect_content_type(content)} if content else None)

    async def api_put_config(self, request: web.Request) -> web.Response:
        log.info("http put request [/api/config]")
        body = await request.read()
        try:
            await self.manager.write_file(body)
        except ApiError as exc:
            log.warning("%s", exc.message)
            log.info("http put response [/api/config], code [%d]", exc.status)
            return _text_error(exc)
        log.info("http put response [/api/config], code [200]")
        return web.Response(status=200)

    async def api_verify(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            if not body:
                raise ApiError(400, "body can't be empty")
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(400, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
            await self.manager.verify_text(text, _bool_param(request.query.get("strictConfig", "true")))
        except ApiError as exc:
            return _text_error(exc)
        return web.Response(status=200)

    async def api_reload(self, request: web.Request) -> web.Response:
        log.info("api request [/api/reload]")
        try:
            await self.manager.reload_from_file(_bool_param(request.query.get("strictConfig", "")))
        except ApiError as exc:
            log.info("api response [/api/reload], code [%d]", exc.status)
            return _text_error(exc)
        log.info("api response [/api/reload], code [200]")
        return web.Response(status=200)

    async def api_stop(self, request: web.Request) -> web.Response:
        log.info("api request [/api/stop]")
        asyncio.get_running_loop().call_later(0.1, self.stop_event.set)
        log.info("api response [/api/stop], code [200]")
        return web.Response(status=200)

    # -- frp 0.68 routes -----------------------------------------------------------------------

    def _entry(self, kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                return _json(self.manager.entry_config(kind, request.match_info["name"]))
            except ApiError as exc:
                return _json_error(exc)
        return handler

    def _store_list(self, kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                return _json(self.manager.store_list(kind))
            except ApiError as exc:
                return _json_error(exc)
        return handler

    def _store_get(self, kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                return _json(self.manager.store_get(kind, request.match_info["name"]))
            except ApiError as exc:
                return _json_error(exc)
        return handler

    def _store_change(self, op: str, kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            body = await request.read() if op != "delete" else b""
            try:
                out: Any = await self.manager.store_change(op, kind, body, request.match_info.get("name", ""))
            except ApiError as exc:
                log.warning("http response [%s]: error: %s", request.path, exc.message)
                return _json_error(exc)
            return _json(out) if out is not None else web.Response(status=200)
        return handler

    # -- the UI --------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        return go_redirect("/static/", method=request.method)

    async def favicon(self, request: web.Request) -> web.StreamResponse:
        return self._file("favicon.ico")

    async def static(self, request: web.Request) -> web.StreamResponse:
        return self._file(request.match_info["path"], request)

    def _file(self, rel: str, request: web.Request | None = None) -> web.StreamResponse:
        root = self.assets.resolve()
        path = (root / rel).resolve()
        inside = path == root or root in path.parents  # no way out of the assets directory
        if request is not None:  # Go's http.FileServer redirects (.../index.html, a directory's slash)
            kind = (True if path.is_dir() else False if path.is_file() else None) if inside else None
            redirect = file_server_redirect(request, kind)
            if redirect is not None:
                return redirect
        if path.is_dir():
            path = path / "index.html"
        if not inside or root not in path.parents or not path.is_file():
            return web.Response(status=404, text="404 page not found\n")
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


def admin_url_scheme(cfg: WebServerConfig) -> str:
    return "https" if cfg.tls is not None else "http"

