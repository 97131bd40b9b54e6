"""The frps dashboard (``webServer``): Go frp 0.65's API with the same JSON, the newer client and
proxy-by-name routes, Prometheus ``/metrics`` and the web UI shipped in this package.

Routes (docs/protocol.md §7.6; Go: server/dashboard_api.go v0.65.0, server/api_router.go v0.68.0)::

    GET  /healthz                      200, empty, no auth
    GET  /api/serverinfo               totals and settings
    GET  /api/proxy/{type}             {"proxies": [...]} sorted by name
    GET  /api/proxy/{type}/{name}      one proxy (404 "no proxy info found")
    GET  /api/proxies/{name}           one proxy of any type (0.68+)
    GET  /api/traffic/{name}           {name, trafficIn: [7 days], trafficOut: [...]}, today first
    DELETE /api/proxies?status=offline forget offline proxies (else 400 "status only support offline")
    GET  /api/clients[?user=&clientId=&runId=&status=]   clients (0.68+)
    GET  /api/clients/{key}            one client (404 "client KEY not found")
    GET  /metrics                      Prometheus text (enablePrometheus)
    GET  /static/...                   the UI; "/" answers 301 to /static/

Error bodies are plain text, as Go 0.65 writes them. Everything but /healthz needs the Basic
auth of ``webServer.user/password`` when either is set (net/webauth.py: constant-time compare,
failures logged, an address guessing passwords is refused for a while).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import mimetypes
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from .. import FRP_VERSION
from ..net.dialerr import listen_error_text
from ..net.listen import bind_socket, resolve_listen
from ..net.webauth import BasicAuth
from ..net.webgo import file_server_redirect, go_headers, go_redirect, go_router
from ..proto.addr import join_host_port
from . import dashboard_v2 as v2
from .errors import ListenerError
from .stats import ProxyStats, today_ordinal

if TYPE_CHECKING:
    from ..proto import msg as m
    from .metrics import Metrics
    from .proxies.base import ServerProxy
    from .service import Server

log = logging.getLogger("aiofrp.server.dashboard")

UI_DIR = Path(__file__).with_name("dashboard_ui")
MAX_BODY = 64 * 1024  # no route reads a body; anything bigger is refused (413)
GZIP_MIN = 32 * 1024  # /api/proxy/{type} answers bigger than this are gzipped for clients that accept it


def _json(obj: object) -> web.Response:
    # Go writes the JSON with WriteHeader(200) and no Content-Type of its own: net/http sniffs
    # "text/plain; charset=utf-8". We say what it is. msgspec: compact like Go's encoding/json,
    # and fast (5,000 proxies in /api/proxy/tcp, bench/dashboard_api.py).
    return web.Response(body=msgspec.json.encode(obj), content_type="application/json")


def _text(status: int, msg: str) -> web.Response:
    return web.Response(status=status, text=msg)


# -- the proxy's configuration as Go shows it ------------------------------------------------------


def proxy_conf(req: m.NewProxy, port: int = 0) -> dict[str, Any]:
    """``conf`` of a proxy: its v1 config rebuilt from NewProxy, filtered per type as Go 0.65's
    dashboard does (TCPOutConf, HTTPOutConf ...; field order as Go's encoding/json writes it).
    Secrets stay out: no ``groupKey`` and, unlike Go, no sudp ``secretKey``. Go has no sudp case
    and dumps the whole config through a map: every key sorted, ``allowUsers`` included (as here).
    ``port``: the port a tcp or udp proxy bound, which Go writes
    into the config's ``remotePort`` once the proxy runs (so ``remotePort = 0`` shows the port
    frps chose)."""
    ptype = req.proxy_type or "tcp"
    transport: dict[str, Any] = {}
    if req.use_encryption:
        transport["useEncryption"] = True
    if req.use_compression:
        transport["useCompression"] = True
    transport["bandwidthLimit"] = req.bandwidth_limit
    transport["bandwidthLimitMode"] = req.bandwidth_limit_mode or "client"
    conf: dict[str, Any] = {"name": req.proxy_name, "type": ptype}
    if req.annotations:
        conf["annotations"] = dict(req.annotations)
    conf["transport"] = transport
    if req.metas:
        conf["metadatas"] = dict(req.metas)
    conf["loadBalancer"] = {"group": req.group}
    conf["healthCheck"] = {"type": "", "intervalSeconds": 0}
    conf["localIP"] = "127.0.0.1"  # frps completes the config with the default (it never sees it)
    conf["plugin"] = None
    if ptype == "sudp":
        if req.allow_users:
            conf["allowUsers"] = list(req.allow_users)
        return _sorted_keys(conf)
    extra = _TYPE_FIELDS.get(ptype)
    if extra is not None:
        extra(req, conf)
        if "remotePort" in conf and port:
            conf["remotePort"] = port
    return conf


def _sorted_keys(v: Any) -> Any:
    """As Go's encoding/json writes a map[string]any: keys sorted, at every level."""
    if isinstance(v, dict):
        return {k: _sorted_keys(v[k]) for k in sorted(v)}
    return v


def _remote_port(req: m.NewProxy, conf: dict[str, Any]) -> None:
    conf["remotePort"] = req.remote_port


def _domains(req: m.NewProxy, conf: dict[str, Any]) -> None:
    if req.custom_domains:
        conf["customDomains"] = list(req.custom_domains)
    if req.subdomain:
        conf["subdomain"] = req.subdomain


def _http(req: m.NewProxy, conf: dict[str, Any]) -> None:
    _domains(req, conf)
    conf["locations"] = list(req.locations) if req.locations else None
    conf["hostHeaderRewrite"] = req.host_header_rewrite


def _tcpmux(req: m.NewProxy, conf: dict[str, Any]) -> None:
    _domains(req, conf)
    conf["multiplexer"] = req.multiplexer
    conf["routeByHTTPUser"] = req.route_by_http_user


_TYPE_FIELDS = {"tcp": _remote_port, "udp": _remote_port, "http": _http, "https": _domains, "tcpmux": _tcpmux}


# -- the server --------------------------------------------------------------------------------


# Go's v1 routes (server/dashboard_api.go, v0.65.0): (method, path, handler name). "*": any method
# (Go's /, /healthz, /metrics); "GET": GET only, HEAD too gets 405. frps --workers' supervisor
# serves the same table (server/workers/dashboard.py).
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("*", "/healthz", "healthz"),
    ("*", "/metrics", "metrics"),
    ("GET", "/api/serverinfo", "serverinfo"),
    ("GET", "/api/proxy/{type}", "proxies_by_type"),
    ("GET", "/api/proxy/{type}/{name}", "proxy_by_type"),
    ("GET", "/api/proxies/{name}", "proxy"),
    ("GET", "/api/traffic/{name}", "traffic"),
    ("DELETE", "/api/proxies", "delete_proxies"),
    ("GET", "/api/clients", "clients"),
    ("GET", "/api/clients/{key}", "client"),
    ("GET", "/favicon.ico", "favicon"),
    ("GET", "/static/{path:.*}", "static"),
    ("*", "/", "root"),
)


def add_routes(r: web.UrlDispatcher, handlers: Mapping[str, Handler | None]) -> None:
    """:data:`ROUTES` with these handlers (one that is None is not served: /metrics without
    enablePrometheus)."""
    for method, path, name in ROUTES:
        handler = handlers[name]
        if handler is None:
            continue
        if method == "GET":
            r.add_get(path, handler, allow_head=False)
        else:
            r.add_route(method, path, handler)


class Dashboard:
    """frps's ``webServer``: an aiohttp application on its own listener."""

    def __init__(self, server: Server, *, unix_path: str = "") -> None:
        self.server = server
        self.cfg = server.cfg.web_server
        # frps --workers N: a worker answers its supervisor's aggregating dashboard on this unix
        # socket (in the supervisor's private directory), without auth or TLS (server/workers/dashboard.py)
        self.unix_path = unix_path
        self.stats = server.stats
        self.metrics: Metrics | None = None
        if server.cfg.enable_prometheus:
            from .metrics import Metrics

            self.metrics = Metrics(server)
        self.auth = BasicAuth(self.cfg.user, self.cfg.password, what="dashboard",
                              on_failure=self._auth_failed)
        self.assets = Path(self.cfg.assets_dir) if self.cfg.assets_dir else UI_DIR
        self._asset_cache: dict[str, tuple[bytes, bytes, str]] = {}
        router = go_router(MAX_BODY, "request body too large\n")
        middlewares = [router] if unix_path else [router, self.auth.middleware]
        app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
        app.on_response_prepare.append(go_headers)
        add_routes(app.router, {
            "healthz": self.healthz, "metrics": self.prometheus if self.metrics is not None else None,
            "serverinfo": self.api_serverinfo, "proxies_by_type": self.api_proxy_by_type,
            "proxy_by_type": self.api_proxy_by_type_and_name, "proxy": self.api_proxy_by_name,
            "traffic": self.api_traffic, "delete_proxies": self.api_delete_proxies, "clients": self.api_clients,
            "client": self.api_client, "favicon": self.favicon, "static": self.static, "root": self.root,
        })
        v2.add_routes(app.router, _V2Source(self))
        self.app = app
        self.runner: web.AppRunner | None = None
        self.address = ""

    def _auth_failed(self, addr: str) -> None:
        self.stats.dashboard_auth_failures += 1

    async def start(self) -> None:
        cfg = self.cfg
        ssl_ctx: ssl.SSLContext | None = None
        if cfg.tls is not None:
            ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ssl_ctx.load_cert_chain(cfg.tls.cert_file, cfg.tls.key_file)
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        if self.unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)  # left by this worker's predecessor, which died
            await web.UnixSite(self.runner, self.unix_path).start()
            if self.metrics is not None:
                self.metrics.start()
            return
        try:
            sock = bind_socket(cfg.addr, cfg.port, resolved=await resolve_listen(cfg.addr))
        except OSError as exc:  # Go prints the net error alone
            raise ListenerError(listen_error_text(join_host_port(cfg.addr, cfg.port), exc)) from exc
        site = web.SockSite(self.runner, sock, ssl_context=ssl_ctx)
        await site.start()
        port = sock.getsockname()[1]
        self.address = join_host_port(cfg.addr, port)
        if self.metrics is not None:
            self.metrics.start()
        log.info("dashboard listen on %s", self.address)
        if not is_loopback(cfg.addr) and cfg.password == "admin":
            log.warning("the dashboard on %s uses the default password \"admin\": set webServer.password "
                        "(--dashboard-pwd)", self.address)

    async def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # -- routes ------------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def root(self, request: web.Request) -> web.Response:
        return go_redirect("/static/", method=request.method)

    async def prometheus(self, request: web.Request) -> web.Response:
        assert self.metrics is not None
        body, ctype = self.metrics.exposition()
        resp = web.Response(body=body, headers={"Content-Type": ctype})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            resp.enable_compression()
        return resp

    async def api_serverinfo(self, request: web.Request) -> web.Response:
        return _json(self.serverinfo())

    def serverinfo(self) -> dict[str, Any]:
        cfg = self.server.cfg
        tin, tout = self.stats.today_totals()
        info: dict[str, Any] = {
            "version": FRP_VERSION,
            "bindPort": cfg.bind_port,
            "vhostHTTPPort": cfg.vhost_http_port,
            "vhostHTTPSPort": cfg.vhost_https_port,
            "tcpmuxHTTPConnectPort": cfg.tcpmux_http_connect_port,
            "kcpBindPort": cfg.kcp_bind_port,
            "quicBindPort": cfg.quic_bind_port,
            "subdomainHost": cfg.subdomain_host,
            "maxPoolCount": cfg.transport.max_pool_count,
            "maxPortsPerClient": cfg.max_ports_per_client,
            "heartbeatTimeout": cfg.transport.heartbeat_timeout,
        }
        if cfg.allow_ports:
            info["allowPortsStr"] = cfg.allow_ports_str
        if cfg.transport.tls.force:
            info["tlsForce"] = True
        info.update({
            "totalTrafficIn": tin,
            "totalTrafficOut": tout,
            "curConns": self.stats.cur_conns,
            "clientCounts": self.stats.client_count,
            "proxyTypeCount": dict(sorted(self.stats.proxy_type_counts.items())),
        })
        return info

    def _proxy_info(self, ps: ProxyStats, *, client_version: bool) -> dict[str, Any]:
        """Go's ProxyStatsInfo (``client_version``: the list's) / GetProxyStatsResp; ``user`` and
        ``clientID`` (omitempty) are 0.67+'s, which 0.65 readers ignore."""
        proxy = self.server.proxies.get(ps.name)
        online = proxy is not None and proxy.online
        out: dict[str, Any] = {"name": ps.name}
        if ps.user:
            out["user"] = ps.user
        if ps.client_id:
            out["clientID"] = ps.client_id
        if online and proxy is not None:
            out["conf"] = msgspec.Raw(conf_json(proxy))
        else:
            out["conf"] = None
        if client_version and online and proxy is not None:
            ctl = self.server.controls.get(proxy.control.run_id)
            if ctl is not None and ctl.login.version:
                out["clientVersion"] = ctl.login.version
        tin, tout = ps.today()
        out.update({
            "todayTrafficIn": tin,
            "todayTrafficOut": tout,
            "curConns": ps.cur_conns,
            "lastStartTime": ps.last_start_text,
            "lastCloseTime": ps.last_close_text,
            "status": "online" if online else "offline",
        })
        return out

    async def api_proxy_by_type(self, request: web.Request) -> web.Response:
        ptype = request.match_info["type"]
        stats = sorted(self.stats.by_type(ptype), key=lambda ps: ps.name)
        body = self._proxy_list(stats)
        if len(body) > GZIP_MIN and "gzip" in request.headers.get("Accept-Encoding", ""):
            # thousands of proxies make megabytes of very repetitive JSON (a phone on a slow link
            # refreshes it every few seconds); level 1 shrinks it ~10x for a few ms
            return web.Response(body=gzip.compress(body, 1), content_type="application/json",
                                headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return web.Response(body=body, content_type="application/json")

    def _proxy_list(self, stats: list[ProxyStats]) -> bytes:
        """``{"proxies":[...]}`` as _proxy_info(client_version=True) would encode it, but fast for
        thousands of proxies: each proxy's unchanging head (name, user, clientID, conf,
        clientVersion) is encoded once per online period, the figures are formatted in."""
        parts = ['{"proxies":[']
        proxies = self.server.proxies
        day = today_ordinal()
        for ps in stats:
            proxy = proxies.get(ps.name)
            if proxy is not None and not proxy.online:
                proxy = None
            cached = ps.json_head
            if cached is None or cached[0] is not proxy:
                info = self._proxy_info(ps, client_version=True)
                for k in ("todayTrafficIn", "todayTrafficOut", "curConns", "lastStartTime", "lastCloseTime",
                          "status"):
                    del info[k]
                head = msgspec.json.encode(info).decode()[:-1]  # without the closing brace
                cached = ps.json_head = (proxy, head)
            tin, tout = ps.today(day)
            status = "online" if proxy is not None else "offline"
            parts.append(f'{cached[1]},"todayTrafficIn":{tin},"todayTrafficOut":{tout},"curConns":{ps.cur_conns},'
                         f'"lastStartTime":"{ps.last_start_text}","lastCloseTime":"{ps.last_close_text}",'
                         f'"status":"{status}"}},')
        if len(parts) > 1:
            parts[-1] = parts[-1][:-1]
        parts.append("]}")
        return "".join(parts).encode()

    async def api_proxy_by_type_and_name(self, request: web.Request) -> web.Response:
        ps = self.stats.proxies.get(request.match_info["name"])
        if ps is None or ps.type != request.match_info["type"]:
            return _text(404, "no proxy info found")
        return _json(self._proxy_info(ps, client_version=False))

    async def api_proxy_by_name(self, request: web.Request) -> web.Response:
        ps = self.stats.proxies.get(request.match_info["name"])
        if ps is None:
            return _text(404, "no proxy info found")
        return _json(self._proxy_info(ps, client_version=False))

    async def api_traffic(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        ps = self.stats.proxies.get(name)
        if ps is None:
            return _text(404, "no proxy info found")
        tin, tout = ps.days()
        return _json({"name": name, "trafficIn": tin, "trafficOut": tout})

    async def api_delete_proxies(self, request: web.Request) -> web.Response:
        if request.query.get("status", "") != "offline":
            return _text(400, "status only support offline")
        cleared, total = self.stats.clear_offline()
        log.info("cleared [%d] offline proxies, total [%d] proxies", cleared, total)
        return web.Response(status=200)

    async def api_clients(self, request: web.Request) -> web.Response:
        q = request.query
        user, cid, run_id = q.get("user", ""), q.get("clientId", ""), q.get("runId", "")
        status = q.get("status", "").lower()
        items = []
        for info in self.stats.clients.values():
            if (user and info.user != user) or (cid and info.client_id != cid) or (run_id and info.run_id != run_id):
                continue
            if (status == "online" and not info.online) or (status == "offline" and info.online):
                continue
            items.append(info)
        items.sort(key=lambda c: (c.user, c.client_id, c.key))
        return _json([v2.client_item(c) for c in items])

    async def api_client(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        info = self.stats.clients.get(key)
        if info is None:
            return _text(404, f"client {key} not found")
        return _json(v2.client_item(info))

    # -- the UI ------------------------------------------------------------------------------

    def _asset(self, rel: str) -> tuple[bytes, bytes, str] | None:
        """(body, gzipped body, content type) of a UI file, read once; None if absent."""
        cached = self._asset_cache.get(rel)
        if cached is not None:
            return cached
        root = self.assets.resolve()
        path = (root / rel).resolve()
        if root not in path.parents and path != root:
            return None
        if path.is_dir():
            path = path / "index.html"
        try:
            body = path.read_bytes()
        except OSError:
            return None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "image/svg+xml"):
            ctype += "; charset=utf-8"
        entry = (body, gzip.compress(body, 6), ctype)
        if not self.cfg.assets_dir:  # the packaged UI never changes; an assetsDir may be edited
            self._asset_cache[rel] = entry
        return entry

    def _serve(self, request: web.Request, rel: str) -> web.Response:
        entry = self._asset(rel)
        if entry is None:
            return _text(404, "404 page not found\n")
        body, zipped, ctype = entry
        headers = {"Content-Type": ctype, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if "gzip" in request.headers.get("Accept-Encoding", "") and len(zipped) < len(body):
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
            return web.Response(body=zipped, headers=headers)
        return web.Response(body=body, headers=headers)

    def _kind(self, rel: str) -> bool | None:
        """Whether ``rel`` names a directory (True) or a file (False) of the UI; None: nothing."""
        root = self.assets.resolve()
        path = (root / rel).resolve()
        if root not in path.parents and path != root:
            return None
        return True if path.is_dir() else False if path.is_file() else None

    async def static(self, request: web.Request) -> web.Response:
        rel = request.match_info["path"]
        if ".." in rel.split("/") or rel.startswith("/") or "\\" in rel or "\0" in rel:
            return _text(404, "404 page not found\n")
        redirect = file_server_redirect(request, self._kind(rel))  # Go's http.FileServer
        if redirect is not None:
            return redirect
        return self._serve(request, rel or "index.html")

    async def favicon(self, request: web.Request) -> web.Response:
        return self._serve(request, "favicon.svg")


def conf_json(proxy: ServerProxy) -> bytes:
    """The proxy's ``conf`` (:func:`proxy_conf`) as JSON, encoded once per proxy."""
    conf = proxy.conf_json
    if conf is None:
        conf = proxy.conf_json = msgspec.json.encode(proxy_conf(proxy.req, proxy.port))
    return conf


class _V2Source(v2.Source):
    """The v2 routes' items from this frps's statistics (server/dashboard_v2.py)."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.stats = dashboard.stats
        self.proxies_by_name = dashboard.server.proxies
        # a worker answers its supervisor in one page, which the supervisor merges and pages
        self.max_page_size = v2.UNPAGED if dashboard.unix_path else v2.MAX_PAGE_SIZE

    def _item(self, ps: ProxyStats, day: int = 0) -> v2.Item:
        proxy = self.proxies_by_name.get(ps.name)
        conf = msgspec.json.decode(conf_json(proxy)) if proxy is not None and proxy.online else None
        return v2.proxy_item(ps, conf, day)

    async def serverinfo(self) -> dict[str, Any]:
        return self.dashboard.serverinfo()

    async def clients(self) -> list[v2.Item]:
        return [v2.client_item(c) for c in self.stats.clients.values()]

    async def proxies(self, ptype: str = "") -> list[v2.Item]:
        day = today_ordinal()
        return [self._item(ps, day) for ps in self.stats.proxies.values() if not ptype or ps.type == ptype]

    async def proxy(self, name: str) -> v2.Item | None:
        ps = self.stats.proxies.get(name)
        return None if ps is None else self._item(ps)

    async def traffic(self, name: str) -> v2.Item | None:
        ps = self.stats.proxies.get(name)
        if ps is None:
            return None
        return v2.traffic_item(name, *ps.days())

    async def prune(self) -> tuple[int, int]:
        return self.stats.clear_offline()


def is_loopback(addr: str) -> bool:
    """Whether a listen address only reaches this machine (``127.0.0.0/8``, ``::1``, localhost)."""
    import ipaddress

    host = addr.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = ["UI_DIR", "Dashboard", "is_loopback", "proxy_conf"]
