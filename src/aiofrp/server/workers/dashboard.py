"""One dashboard for ``frps --workers N``: the supervisor listens on ``webServer`` (same auth, TLS
and routes as server/dashboard.py) and asks every worker's dashboard, which listens on a unix
socket in the supervisor's private directory, then merges the answers:

* ``/api/serverinfo``: the settings of the first answer; traffic, connections, clients and the
  proxy counts by type added up;
* ``/api/proxy/{type}``: the union by name (an online entry wins over an offline one left in the
  worker that served the proxy before), sorted by name; ``/api/clients``: every worker's clients,
  each tagged ``"worker": N``;
* ``/api/traffic/{name}``: the 7-day arrays added up day by day;
* one proxy or client (``/api/proxy/{type}/{name}``, ``/api/proxies/{name}``,
  ``/api/clients/{key}``): the online answer, else the first found, else the 404;
* ``DELETE /api/proxies``: asked of every worker;
* ``/api/v2/...`` (Go 0.70's API v2, server/dashboard_v2.py): each worker lists all its clients and
  proxies in one page; they are merged as above (one entry per client key and per proxy name, the
  online one first) and filtered, sorted and paged here; traffic histories are added up by date;
* ``/metrics``: every series added up across workers (:data:`METRIC_MERGE` names the few that
  take the maximum or the minimum instead), each ``# HELP``/``# TYPE`` once;
* the UI (``/``, ``/static/...``, ``/favicon.ico``): the first worker's answer as it is.

Routes, methods, auth and error answers are server/dashboard.py's (Go's router: a path no route
serves gets its 404 without an auth challenge).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec
from aiohttp import web

from ...net.listen import bind_socket, resolve_listen
from ...net.webauth import BasicAuth
from ...net.webgo import go_router
from ...proto.addr import join_host_port
from .. import dashboard_v2 as v2
from ..dashboard import add_routes

if TYPE_CHECKING:
    from ...config.server import ServerConfig

log = logging.getLogger("aiofrp.server.workers")

ASK_TIMEOUT = 5.0


def dashboard_socket(registry_path: str, worker: int) -> str:
    """The unix socket of worker ``worker``'s dashboard, beside the registry's."""
    return os.path.join(os.path.dirname(registry_path), f"dashboard-w{worker}.sock")


Answer = tuple[int, int, bytes, dict[str, str]]  # worker, status, body, the headers passed on
PASSED_HEADERS = ("Content-Type", "Content-Encoding", "Location", "Cache-Control", "Vary", "X-Content-Type-Options")

METRIC_MERGE: dict[str, Callable[[float, float], float]] = {
    "process_start_time_seconds": min,
    "process_max_fds": max,
    "process_virtual_memory_max_bytes": max,
    "python_info": max,
    "aiofrp_event_loop_lag_seconds": max,
    "aiofrp_event_loop_lag_max_seconds": max,
}
"""Series whose workers' values are not added up (the rest are: counters, counts, bytes)."""


def merge_metrics(texts: list[str]) -> str:
    """Prometheus text of several processes as one: same series added up (see METRIC_MERGE)."""
    order: list[str] = []  # comment lines and series keys, in first-seen order
    seen_comments: set[str] = set()
    values: dict[str, float] = {}
    for text in texts:
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("#"):
                if line not in seen_comments:
                    seen_comments.add(line)
                    order.append(line)
                continue
            key, _, raw = line.rpartition(" ")
            try:
                v = float(raw)
            except ValueError:
                continue
            if key in values:
                name = key.partition("{")[0]
                how = min if name.endswith("_created") else METRIC_MERGE.get(name, float.__add__)
                values[key] = how(values[key], v)
            else:
                values[key] = v
                order.append(key)
    out = []
    for item in order:
        if item.startswith("#"):
            out.append(item)
        else:
            v = values[item]
            out.append(f"{item} {int(v) if v.is_integer() and abs(v) < 1e15 else v!r}")
    return "\n".join(out) + "\n"


def _is_online(body: bytes) -> bool:
    """A proxy (``status``) or client (``online``) answer that is the live one."""
    try:
        obj = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return False
    return isinstance(obj, dict) and (obj.get("status") == "online" or obj.get("online") is True)


class AggregateDashboard:
    def __init__(self, cfg: ServerConfig, registry_path: str, workers: int) -> None:
        self.cfg = cfg.web_server
        self.prometheus = cfg.enable_prometheus
        self.sockets = {i: dashboard_socket(registry_path, i) for i in range(1, workers + 1)}
        self.auth = BasicAuth(self.cfg.user, self.cfg.password, what="dashboard")
        self.runner: web.AppRunner | None = None
        self.sessions: dict[int, aiohttp.ClientSession] = {}
        # server/dashboard.py's router, limit and routes
        app = web.Application(middlewares=[go_router(64 * 1024, "request body too large\n"), self.auth.middleware],
                              client_max_size=64 * 1024)
        add_routes(app.router, {
            "healthz": self.healthz, "metrics": self.metrics if self.prometheus else None,
            "serverinfo": self.serverinfo, "proxies_by_type": self.proxy_list, "proxy_by_type": self.one,
            "proxy": self.one, "traffic": self.traffic, "delete_proxies": self.forward, "clients": self.clients,
            "client": self.one, "favicon": self.forward, "static": self.forward, "root": self.forward,
        })
        v2.add_routes(app.router, _V2Source(self))
        self.app = app

    async def start(self) -> None:
        cfg = self.cfg
        ssl_ctx: ssl.SSLContext | None = None
        if cfg.tls is not None:
            ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ssl_ctx.load_cert_chain(cfg.tls.cert_file, cfg.tls.key_file)
        for i, path in self.sockets.items():
            self.sessions[i] = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=path), timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT),
                auto_decompress=False)
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        sock = bind_socket(cfg.addr, cfg.port, resolved=await resolve_listen(cfg.addr))
        await web.SockSite(self.runner, sock, ssl_context=ssl_ctx).start()
        log.info("dashboard listen on %s (the %d workers' figures added up)",
                 join_host_port(cfg.addr, sock.getsockname()[1]), len(self.sockets))

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        for s in self.sessions.values():
            await s.close()

    # -- asking the workers -------------------------------------------------------------------

    async def _ask(self, worker: int, method: str, path: str, headers: dict[str, str] | None = None) -> Answer | None:
        try:
            async with self.sessions[worker].request(method, f"http://worker{path}", headers=headers,
                                                     allow_redirects=False) as resp:
                passed = {h: resp.headers[h] for h in PASSED_HEADERS if h in resp.headers}
                return worker, resp.status, await resp.read(), passed
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None  # a worker starting again: left out of this answer

    async def _ask_all(self, request: web.Request, method: str = "GET") -> list[Answer]:
        plain = {"Accept-Encoding": "identity"}  # merged here, compressed (or not) for the caller after
        answers = await asyncio.gather(*(self._ask(w, method, request.path_qs, plain) for w in sorted(self.sessions)))
        return [a for a in answers if a is not None]

    @staticmethod
    def _json(obj: object) -> web.Response:
        return web.Response(body=msgspec.json.encode(obj), content_type="application/json")

    # -- routes -------------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def ask_path(self, method: str, path: str) -> list[Answer]:
        plain = {"Accept-Encoding": "identity"}
        answers = await asyncio.gather(*(self._ask(w, method, path, plain) for w in sorted(self.sessions)))
        return [a for a in answers if a is not None]

    async def serverinfo(self, request: web.Request) -> web.Response:
        out = await self.merged_serverinfo()
        if out is None:
            return web.Response(status=503, text="no frps worker answered\n")
        return self._json(out)

    async def merged_serverinfo(self) -> dict[str, Any] | None:
        infos = [msgspec.json.decode(b) for _, s, b, _ in await self.ask_path("GET", "/api/serverinfo") if s == 200]
        if not infos:
            return None
        out: dict[str, Any] = dict(infos[0])
        for key in ("totalTrafficIn", "totalTrafficOut", "curConns", "clientCounts"):
            out[key] = sum(int(i.get(key, 0)) for i in infos)
        counts: dict[str, int] = {}
        for i in infos:
            for t, n in (i.get("proxyTypeCount") or {}).items():
                counts[t] = counts.get(t, 0) + int(n)
        out["proxyTypeCount"] = dict(sorted(counts.items()))
        return out

    async def proxy_list(self, request: web.Request) -> web.Response:
        by_name: dict[str, dict[str, Any]] = {}
        for _, status, body, _ in await self._ask_all(request):
            if status != 200:
                continue
            for p in msgspec.json.decode(body).get("proxies", []):
                have = by_name.get(p["name"])
                if have is None or (have.get("status") != "online" and p.get("status") == "online"):
                    by_name[p["name"]] = p
        return self._json({"proxies": [by_name[n] for n in sorted(by_name)]})

    async def one(self, request: web.Request) -> web.Response:
        answers = await self._ask_all(request)
        found = [a for a in answers if a[1] == 200]
        pick = next((a for a in found if _is_online(a[2])), found[0] if found else None)
        if pick is None:
            if not answers:
                return web.Response(status=503, text="no frps worker answered\n")
            pick = answers[0]
        return web.Response(status=pick[1], body=pick[2], headers=pick[3])

    async def traffic(self, request: web.Request) -> web.Response:
        found = [msgspec.json.decode(b) for _, s, b, _ in await self._ask_all(request) if s == 200]
        if not found:
            return web.Response(status=404, text="no proxy info found")
        out = dict(found[0])
        for key in ("trafficIn", "trafficOut"):
            days = max(len(f.get(key, [])) for f in found)
            out[key] = [sum(int(f[key][d]) for f in found if d < len(f.get(key, []))) for d in range(days)]
        return self._json(out)

    async def clients(self, request: web.Request) -> web.Response:
        items: list[dict[str, Any]] = []
        for worker, status, body, _ in await self._ask_all(request):
            if status == 200:
                items += [{**c, "worker": worker} for c in msgspec.json.decode(body)]
        items.sort(key=lambda c: (c.get("user", ""), c.get("clientID", ""), c.get("key", "")))
        return self._json(items)

    async def metrics(self, request: web.Request) -> web.Response:
        texts = [b.decode() for _, s, b, _ in await self._ask_all(request) if s == 200]
        resp = web.Response(body=merge_metrics(texts).encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            resp.enable_compression()
        return resp

    async def forward(self, request: web.Request) -> web.Response:
        """The UI's files: one worker answers for all (DELETE /api/proxies: every worker is
        asked, the first answer returned)."""
        if request.method == "DELETE":
            answers = await self._ask_all(request, "DELETE")
        else:
            answers = []
            for w in sorted(self.sessions):
                a = await self._ask(w, request.method, request.path_qs,
                                    {"Accept-Encoding": request.headers.get("Accept-Encoding", "")})
                if a is not None:
                    answers = [a]
                    break
        if not answers:
            return web.Response(status=503, text="no frps worker answered\n")
        _, status, body, headers = answers[0]
        return web.Response(status=status, body=body, headers=headers)


class _V2Source(v2.Source):
    """The v2 routes' items from every worker (their dashboards answer v2 in one page)."""

    def __init__(self, agg: AggregateDashboard) -> None:
        self.agg = agg

    async def _items(self, path: str) -> list[list[v2.Item]]:
        out = []
        for _, status, body, _ in await self.agg.ask_path("GET", path):
            if status == 200:
                data = msgspec.json.decode(body).get("data") or {}
                out.append(list(data.get("items") or []))
        return out

    async def serverinfo(self) -> dict[str, Any]:
        info = await self.agg.merged_serverinfo()
        if info is None:
            raise v2.V2Error(503, "no frps worker answered")
        return info

    async def clients(self) -> list[v2.Item]:
        by_key: dict[str, v2.Item] = {}
        for items in await self._items(f"/api/v2/clients?pageSize={v2.UNPAGED}"):
            for c in items:
                have = by_key.get(c["key"])
                if have is None or (c.get("online") and not have.get("online")):
                    by_key[c["key"]] = c
        return list(by_key.values())

    async def proxies(self, ptype: str = "") -> list[v2.Item]:
        by_name: dict[str, v2.Item] = {}
        path = f"/api/v2/proxies?pageSize={v2.UNPAGED}" + (f"&type={ptype}" if ptype else "")
        for items in await self._items(path):
            for p in items:
                have = by_name.get(p["name"])
                if have is None or (p["status"]["phase"] == "online" and have["status"]["phase"] != "online"):
                    by_name[p["name"]] = p
        return list(by_name.values())

    async def proxy(self, name: str) -> v2.Item | None:
        return next((p for p in await self.proxies() if p["name"] == name), None)

    async def traffic(self, name: str) -> v2.Item | None:
        from urllib.parse import quote

        found = [msgspec.json.decode(b)["data"]
                 for _, s, b, _ in await self.agg.ask_path("GET", f"/api/v2/proxies/{quote(name, safe='')}/traffic")
                 if s == 200]
        if not found:
            return None
        out = dict(found[0])
        by_date: dict[str, dict[str, Any]] = {}
        for f in found:
            for point in f["history"]:
                have = by_date.setdefault(point["date"], {"date": point["date"], "trafficIn": 0, "trafficOut": 0})
                have["trafficIn"] += int(point["trafficIn"])
                have["trafficOut"] += int(point["trafficOut"])
        out["history"] = [by_date[d] for d in sorted(by_date)][-v2.TRAFFIC_DAYS:]
        return out

    async def prune(self) -> tuple[int, int]:
        cleared = total = 0
        for _, status, body, _ in await self.agg.ask_path("POST", f"/api/v2/system/prune?type={v2.PRUNE_OFFLINE}"):
            if status == 200:
                data = msgspec.json.decode(body)["data"]
                cleared += int(data["cleared"])
                total += int(data["total"])
        return cleared, total
