"""Go frp 0.70's dashboard API v2 (``/api/v2/...``): paged, filtered lists of users, clients and
proxies, a proxy's typed spec, its traffic history by date, and the prune of offline proxies.

Routes (Go: server/http/controller_v2.go and model/v2.go, v0.70.1; docs/protocol.md §7.6)::

    GET  /api/v2/system/info                     version, settings, totals
    POST /api/v2/system/prune?type=offline_proxies   forget offline proxies: {type, cleared, total}
    GET  /api/v2/users[?q=&page=&pageSize=]      users with their client and proxy counts
    GET  /api/v2/clients[?user=&clientID=&runID=&status=&q=&page=&pageSize=]
    GET  /api/v2/clients/{key}                   one client with its status (phase, curConns, proxyCount)
    GET  /api/v2/proxies[?type=&user=&clientID=&status=&q=&page=&pageSize=]
    GET  /api/v2/proxies/{name}                  one proxy
    GET  /api/v2/proxies/{name}/traffic          7 days, oldest first, dated

Every answer is Go's envelope ``{"code": 200, "msg": "success", "data": ...}``; an error is
``{"code": N, "msg": "...", "data": null}`` with HTTP status N. Lists are sorted as Go sorts them
(users by name; clients by user, client id, key; proxies by type, name) and cut into pages
(``page`` from 1, ``pageSize`` 1–200, default 50).

The lists are built from plain JSON-shaped dicts (:func:`client_item`, :func:`proxy_item`) so that
``frps --workers N`` answers the same routes from its workers' items (server/workers/dashboard.py):
a worker's own dashboard, on its private unix socket, pages without the 200 cap (:data:`UNPAGED`).
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

if TYPE_CHECKING:
    from .stats import ClientInfo, ProxyStats

PROXY_TYPES = ("tcp", "udp", "http", "https", "tcpmux", "stcp", "xtcp", "sudp")
DEFAULT_PAGE = 1
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
UNPAGED = sys.maxsize  # a worker's answer to its supervisor: everything in one page
PRUNE_OFFLINE = "offline_proxies"
TRAFFIC_DAYS = 7

Item = dict[str, Any]


class V2Error(Exception):
    """An answer other than 200: Go's httppkg.NewError (a plain error is a 500 there)."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


def ok(data: object) -> web.Response:
    return web.Response(body=msgspec.json.encode({"code": 200, "msg": "success", "data": data}) + b"\n",
                        content_type="application/json")


def error(status: int, msg: str) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode({"code": status, "msg": msg, "data": None}) + b"\n",
                        content_type="application/json")


# -- query parameters --------------------------------------------------------------------------


def _positive(raw: str, default: int, name: str) -> int:
    if raw == "":
        return default
    digits = raw[1:] if raw[0] in "+-" else raw  # what Go's strconv.Atoi takes
    value = int(raw) if digits.isascii() and digits.isdigit() else 0
    if not 1 <= value <= sys.maxsize:
        raise V2Error(400, f"{name} must be a positive integer")
    return value


def page_params(query: Mapping[str, str], max_size: int = MAX_PAGE_SIZE) -> tuple[int, int]:
    page = _positive(query.get("page", ""), DEFAULT_PAGE, "page")
    size = _positive(query.get("pageSize", ""), DEFAULT_PAGE_SIZE, "pageSize")
    if size > max_size:
        raise V2Error(400, f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
    if page > sys.maxsize // size:
        raise V2Error(400, "page is too large")
    return page, size


def status_filter(raw: str) -> str:
    status = raw.lower()
    if status not in ("", "all", "online", "offline"):
        raise V2Error(400, "status must be one of all, online, offline")
    return status


def type_filter(raw: str) -> str:
    ptype = raw.lower()
    if ptype and ptype not in PROXY_TYPES:
        raise V2Error(400, "type must be one of " + ", ".join(PROXY_TYPES))
    return ptype


def prune_type(raw: str) -> str:
    kind = raw.lower()
    if kind == "":
        raise V2Error(400, "type is required")
    if kind != PRUNE_OFFLINE:
        raise V2Error(400, f"type must be one of {PRUNE_OFFLINE}")
    return kind


def _status_matches(online: bool, status: str) -> bool:
    return status in ("", "all") or (status == "online") == online


def paged(items: list[Any], page: int, size: int) -> Item:
    start = (page - 1) * size
    return {"total": len(items), "page": page, "pageSize": size, "items": items[start:start + size]}


def _contains(q: str, values: Iterable[object]) -> bool:
    return any(q in str(v).lower() for v in values)


# -- items ---------------------------------------------------------------------------------------


def client_item(c: ClientInfo) -> Item:
    """Go 0.70's ClientInfoResp (also /api/clients' items)."""
    out: Item = {"key": c.key, "user": c.user, "clientID": c.client_id, "runID": c.run_id}
    if c.version:
        out["version"] = c.version
    if c.wire_protocol:
        out["wireProtocol"] = c.wire_protocol
    out["hostname"] = c.hostname
    if c.ip:
        out["clientIP"] = c.ip
    out["firstConnectedAt"] = int(c.first_connected)
    out["lastConnectedAt"] = int(c.last_connected)
    if c.disconnected:
        out["disconnectedAt"] = int(c.disconnected)
    out["online"] = c.online
    return out


_SPEC_FIELDS: dict[str, tuple[str, ...]] = {
    "tcp": ("remotePort",),
    "udp": ("remotePort",),
    "http": ("customDomains", "subdomain", "locations", "hostHeaderRewrite"),
    "https": ("customDomains", "subdomain"),
    "tcpmux": ("customDomains", "subdomain", "multiplexer", "routeByHTTPUser"),
}


def proxy_spec(ptype: str, conf: Mapping[str, Any] | None) -> Item:
    """V2ProxySpec: ``type`` and a block under the type's name, filled from the proxy's ``conf``
    (server/dashboard.py proxy_conf) while it is online, empty while it is not (Go: no
    configuration without a running proxy). Empty values are left out, as Go's omitempty does."""
    block: Item = {}
    if conf is not None:
        if conf.get("annotations"):
            block["annotations"] = dict(conf["annotations"])
        if conf.get("metadatas"):
            block["metadatas"] = dict(conf["metadatas"])
        transport = conf.get("transport") or {}
        block["transport"] = {
            "useEncryption": bool(transport.get("useEncryption")),
            "useCompression": bool(transport.get("useCompression")),
            "bandwidthLimit": transport.get("bandwidthLimit") or "",
            "bandwidthLimitMode": transport.get("bandwidthLimitMode") or "",
        }
        block["loadBalancer"] = {"group": (conf.get("loadBalancer") or {}).get("group") or ""}
        for key in _SPEC_FIELDS.get(ptype, ()):
            value = conf.get(key)
            if key == "remotePort":
                block[key] = int(value or 0)  # a pointer in Go: written even when 0
            elif value:
                block[key] = value
    spec: Item = {"type": ptype}
    if ptype in PROXY_TYPES:
        spec[ptype] = block
    return spec


def proxy_item(ps: ProxyStats, conf: Mapping[str, Any] | None, day: int = 0) -> Item:
    """V2ProxyResp of one proxy's statistics; ``conf`` is None when it is offline."""
    tin, tout = ps.today(day)
    status: Item = {"phase": "online" if conf is not None else "offline", "todayTrafficIn": tin,
                    "todayTrafficOut": tout, "curConns": ps.cur_conns}
    if ps.last_start:
        status["lastStartAt"] = int(ps.last_start)
    if ps.last_close:
        status["lastCloseAt"] = int(ps.last_close)
    return {"name": ps.name, "user": ps.user, "clientID": ps.client_id, "spec": proxy_spec(ps.type, conf),
            "status": status}


def traffic_item(name: str, days_in: list[int], days_out: list[int], today: datetime.date | None = None) -> Item:
    """V2ProxyTrafficResp: the last 7 local days, oldest first (the counters are today first)."""
    today = today or datetime.date.today()
    history = []
    for age in range(TRAFFIC_DAYS - 1, -1, -1):
        history.append({
            "date": (today - datetime.timedelta(days=age)).isoformat(),
            "trafficIn": days_in[age] if age < len(days_in) else 0,
            "trafficOut": days_out[age] if age < len(days_out) else 0,
        })
    return {"name": name, "unit": "bytes", "granularity": "day", "history": history}


# -- queries over items ---------------------------------------------------------------------


def select_clients(items: Iterable[Item], query: Mapping[str, str]) -> list[Item]:
    """The clients /api/v2/clients lists, filtered and sorted (no paging). ``user=`` present but
    empty selects the clients without a user, as Go's queryValue tells "absent" from "empty"."""
    status = status_filter(query.get("status", ""))
    user = query.get("user")
    cid, run_id = query.get("clientID", ""), query.get("runID", "")
    q = query.get("q", "").lower()
    out = []
    for c in items:
        if user is not None and c["user"] != user:
            continue
        if (cid and c["clientID"] != cid) or (run_id and c["runID"] != run_id):
            continue
        if not _status_matches(bool(c["online"]), status):
            continue
        if q and not _contains(q, (c["key"], c["user"], c["clientID"], c["runID"], c.get("version", ""),
                                   c.get("wireProtocol", ""), c["hostname"], c.get("clientIP", ""))):
            continue
        out.append(c)
    out.sort(key=lambda c: (c["user"], c["clientID"], c["key"]))
    return out


def _proxy_search_values(p: Item) -> list[object]:
    spec = p["spec"]
    ptype = spec["type"]
    values: list[object] = [p["name"], ptype, p["user"], p["clientID"], p["status"]["phase"]]
    block = spec.get(ptype) or {}
    if ptype in ("tcp", "udp"):
        if "remotePort" in block:
            values.append(block["remotePort"])
    elif ptype in ("http", "https", "tcpmux"):
        values += block.get("customDomains") or []
        values.append(block.get("subdomain", ""))
    return values


def select_proxies(items: Iterable[Item], query: Mapping[str, str]) -> list[Item]:
    """The proxies /api/v2/proxies lists, filtered and sorted (no paging)."""
    status = status_filter(query.get("status", ""))
    ptype = type_filter(query.get("type", ""))
    user = query.get("user")
    cid = query.get("clientID", "")
    q = query.get("q", "").lower()
    out = []
    for p in items:
        if p["spec"]["type"] not in PROXY_TYPES or (ptype and p["spec"]["type"] != ptype):
            continue
        if (user is not None and p["user"] != user) or (cid and p["clientID"] != cid):
            continue
        if not _status_matches(p["status"]["phase"] == "online", status):
            continue
        if q and not _contains(q, _proxy_search_values(p)):
            continue
        out.append(p)
    out.sort(key=lambda p: (p["spec"]["type"], p["name"]))
    return out


def select_users(clients: Iterable[Item], proxies: Iterable[Item], query: Mapping[str, str]) -> list[Item]:
    """V2UserResp per user that has a client or a proxy (an empty user too), sorted by name."""
    users: dict[str, Item] = {}
    for c in clients:
        users.setdefault(c["user"], {"user": c["user"], "clientCount": 0, "proxyCount": 0})["clientCount"] += 1
    for p in proxies:
        if p["spec"]["type"] in PROXY_TYPES:
            users.setdefault(p["user"], {"user": p["user"], "clientCount": 0, "proxyCount": 0})["proxyCount"] += 1
    q = query.get("q", "").lower()
    return sorted((u for u in users.values() if not q or q in u["user"].lower()), key=lambda u: u["user"])


def client_detail(client: Item, proxies: Iterable[Item]) -> Item:
    """V2ClientDetailResp: the client and what its proxies add up to."""
    cur = count = 0
    for p in proxies:
        if p["user"] == client["user"] and p["clientID"] == client["clientID"] and p["spec"]["type"] in PROXY_TYPES:
            cur += int(p["status"]["curConns"])
            count += 1
    return {**client, "status": {"phase": "online" if client["online"] else "offline", "curConns": cur,
                                 "proxyCount": count}}


def system_info(serverinfo: Mapping[str, Any]) -> Item:
    """V2SystemInfoResp from /api/serverinfo's answer."""
    config_keys = ("bindPort", "vhostHTTPPort", "vhostHTTPSPort", "tcpmuxHTTPConnectPort", "kcpBindPort",
                   "quicBindPort", "subdomainHost", "maxPoolCount", "maxPortsPerClient", "heartbeatTimeout")
    config: Item = {k: serverinfo.get(k, 0) for k in config_keys}
    config["subdomainHost"] = serverinfo.get("subdomainHost", "")
    config["allowPortsStr"] = serverinfo.get("allowPortsStr", "")
    config["tlsForce"] = bool(serverinfo.get("tlsForce", False))
    status = {k: serverinfo.get(k, 0) for k in ("totalTrafficIn", "totalTrafficOut", "curConns", "clientCounts")}
    status["proxyTypeCount"] = dict(serverinfo.get("proxyTypeCount") or {})
    return {"version": serverinfo.get("version", ""), "config": config, "status": status}


# -- the routes ----------------------------------------------------------------------------------


class Source:
    """Where the routes get their items: one frps (server/dashboard.py) or its workers."""

    max_page_size = MAX_PAGE_SIZE

    async def serverinfo(self) -> Mapping[str, Any]:
        raise NotImplementedError

    async def clients(self) -> list[Item]:
        raise NotImplementedError

    async def proxies(self, ptype: str = "") -> list[Item]:
        raise NotImplementedError

    async def proxy(self, name: str) -> Item | None:
        """One proxy's item, any type (None: no statistics under that name)."""
        raise NotImplementedError

    async def traffic(self, name: str) -> Item | None:
        raise NotImplementedError

    async def prune(self) -> tuple[int, int]:
        """Forget offline proxies: (cleared, total before)."""
        raise NotImplementedError


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(fn: Callable[[web.Request], Awaitable[object]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return ok(await fn(request))
        except V2Error as exc:
            return error(exc.status, exc.msg)

    return handler


def add_routes(router: web.UrlDispatcher, src: Source) -> None:
    """The v2 routes on a dashboard's router, answered from ``src``."""

    async def system_info_route(request: web.Request) -> object:
        return system_info(await src.serverinfo())

    async def prune_route(request: web.Request) -> object:
        kind = prune_type(request.query.get("type", ""))
        cleared, total = await src.prune()
        return {"type": kind, "cleared": cleared, "total": total}

    async def users_route(request: web.Request) -> object:
        page, size = page_params(request.query, src.max_page_size)
        return paged(select_users(await src.clients(), await src.proxies(), request.query), page, size)

    async def clients_route(request: web.Request) -> object:
        page, size = page_params(request.query, src.max_page_size)
        status_filter(request.query.get("status", ""))
        return paged(select_clients(await src.clients(), request.query), page, size)

    async def client_route(request: web.Request) -> object:
        key = request.match_info["key"]
        client = next((c for c in await src.clients() if c["key"] == key), None)
        if client is None:
            raise V2Error(404, f"client {key} not found")
        return client_detail(client, await src.proxies())

    async def proxies_route(request: web.Request) -> object:
        page, size = page_params(request.query, src.max_page_size)
        status_filter(request.query.get("status", ""))
        ptype = type_filter(request.query.get("type", ""))
        return paged(select_proxies(await src.proxies(ptype), request.query), page, size)

    async def proxy_route(request: web.Request) -> object:
        item = await src.proxy(request.match_info["name"])
        if item is None:
            raise V2Error(404, "no proxy info found")
        return item

    async def traffic_route(request: web.Request) -> object:
        item = await src.traffic(request.match_info["name"])
        if item is None:
            raise V2Error(404, "no proxy info found")
        return item

    router.add_get("/api/v2/system/info", _guarded(system_info_route))
    router.add_post("/api/v2/system/prune", _guarded(prune_route))
    router.add_get("/api/v2/users", _guarded(users_route))
    router.add_get("/api/v2/clients", _guarded(clients_route))
    router.add_get("/api/v2/clients/{key}", _guarded(client_route))
    router.add_get("/api/v2/proxies", _guarded(proxies_route))
    router.add_get("/api/v2/proxies/{name}/traffic", _guarded(traffic_route))
    router.add_get("/api/v2/proxies/{name}", _guarded(proxy_route))


__all__ = [
    "MAX_PAGE_SIZE", "PROXY_TYPES", "UNPAGED", "Source", "V2Error", "add_routes", "client_detail", "client_item",
    "page_params", "paged", "proxy_item", "proxy_spec", "select_clients", "select_proxies", "select_users",
    "system_info", "traffic_item",
]
