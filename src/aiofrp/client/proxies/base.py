"""The proxy wrapper (frp's status machine: new -> wait start -> running | start error) and the
work-connection hand-off shared by all proxy types."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...net.msgconn import MsgConn
from ...proto import msg as m

if TYPE_CHECKING:
    from ..control import Control
    from ..service import Client

log = logging.getLogger("aiofrp.client.proxy")

START_RESP_TIMEOUT = 20.0
START_ERROR_RETRY = 30.0

Handler = Callable[["ProxyWrapper", MsgConn, m.StartWorkConn], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}


def register(*proxy_types: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for t in proxy_types:
            HANDLERS[t] = fn
        return fn

    return deco


def new_proxy_msg(client: Client, cfg: Any) -> m.NewProxy:
    """NewProxy for a proxy config: only the fields that apply to its type are set."""
    t = cfg.transport
    fields: dict[str, Any] = {
        "proxy_name": client.wire_name(cfg.name),
        "proxy_type": cfg.type,
        "use_encryption": t.use_encryption,
        "use_compression": t.use_compression,
        "bandwidth_limit": getattr(t, "bandwidth_limit", "") or "",
        "bandwidth_limit_mode": "server" if getattr(t, "bandwidth_limit_mode", "") == "server" else "",
        "metas": dict(getattr(cfg, "metadatas", None) or {}),
        "annotations": dict(getattr(cfg, "annotations", None) or {}),
    }
    lb = getattr(cfg, "load_balancer", None)
    if lb is not None:
        fields["group"] = lb.group
        fields["group_key"] = lb.group_key
    simple = {
        "remote_port": "remote_port", "custom_domains": "custom_domains", "subdomain": "subdomain",
        "locations": "locations", "http_user": "http_user", "http_pwd": "http_password",
        "host_header_rewrite": "host_header_rewrite", "route_by_http_user": "route_by_http_user",
        "sk": "secret_key", "allow_users": "allow_users", "multiplexer": "multiplexer",
    }
    for wire, attr in simple.items():
        v = getattr(cfg, attr, None)
        if v:
            fields[wire] = list(v) if isinstance(v, (list, tuple)) else v
    for wire, attr in (("headers", "request_headers"), ("response_headers", "response_headers")):
        ops = getattr(cfg, attr, None)
        if ops is not None and ops.set:
            fields[wire] = dict(ops.set)
    return m.NewProxy(**fields)


class ProxyWrapper:
    def __init__(self, client: Client, cfg: Any) -> None:
        self.client = client
        self.cfg = cfg
        self.name = cfg.name
        self.wire_name = client.wire_name(cfg.name)
        self.status = "new"
        self.err = ""
        self.remote_addr = ""
        self.control: Control | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    def start(self, control: Control) -> None:
        self.control = control
        self._send_new_proxy()

    def _send_new_proxy(self) -> None:
        if self.control is None:
            return
        self.status = "wait start"
        self.control.send(new_proxy_msg(self.client, self.cfg))
        self._set_timer(START_RESP_TIMEOUT)

    def _set_timer(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        if self.status in ("wait start", "start error"):
            self._send_new_proxy()

    def on_start_resp(self, resp: m.NewProxyResp) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if resp.error:
            self.status = "start error"
            self.err = resp.error
            log.warning("[%s] start error: %s", self.wire_name, resp.error)
            self._set_timer(START_ERROR_RETRY)
            return
        self.status = "running"
        self.err = ""
        self.remote_addr = resp.remote_addr
        log.info("[%s] start proxy success", self.wire_name)
        if self.cfg.type in ("tcp", "udp") and resp.remote_addr.startswith(":"):
            log.info("[%s] remote address [%s%s]", self.wire_name, self.client.cfg.server_addr, resp.remote_addr)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.control = None
        if self.status != "new":
            self.status = "new"

    async def handle_work_conn(self, conn: MsgConn, start: m.StartWorkConn) -> None:
        handler = HANDLERS.get(self.cfg.type)
        if handler is None:
            log.warning("[%s] proxy type %s has no handler", self.wire_name, self.cfg.type)
            conn.close()
            return
        await handler(self, conn, start)

    def status_dict(self) -> dict[str, Any]:
        local = ""
        if getattr(self.cfg, "local_port", 0):
            local = f"{self.cfg.local_ip}:{self.cfg.local_port}"
        remote = self.remote_addr
        if self.status == "running" and self.cfg.type in ("tcp", "udp") and remote.startswith(":"):
            remote = f"{self.client.cfg.server_addr}{remote}"
        if self.status != "running":
            remote = ""
        plugin = getattr(self.cfg, "plugin", None)
        return {
            "name": self.name,
            "type": self.cfg.type,
            "status": self.status,
            "err": self.err,
            "local_addr": local,
            "plugin": getattr(plugin, "type", "") if plugin is not None else "",
            "remote_addr": remote,
        }
