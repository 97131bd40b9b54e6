"""The proxy wrapper (frp's status machine: new -> wait start -> running | start error, and
check failed while a health check fails) and the work-connection hand-off shared by all types."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...net.limiter import TokenBucket, bucket_for
from ...net.msgconn import MsgConn
from ...proto import msg as m
from ...proto.addr import join_host_port
from ..health import HealthMonitor

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
        t = cfg.transport
        # bandwidthLimitMode "client" (default): frpc meters all the proxy's work connections
        self.limiter: TokenBucket | None = (
            bucket_for(t.bandwidth_limit, name=self.wire_name) if t.bandwidth_limit_mode != "server" else None
        )
        # With a health check the proxy is registered only while the local service is healthy.
        self.monitor: HealthMonitor | None = None
        self.healthy = True
        hc = getattr(cfg, "health_check", None)
        if hc is not None and hc.type and getattr(cfg, "local_port", 0):
            self.healthy = False
            self.monitor = HealthMonitor(self.wire_name, hc, cfg.local_ip, cfg.local_port,
                                         self._health_ok, self._health_failed)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def start(self, control: Control) -> None:
        self.control = control
        if self.monitor is not None:
            self.monitor.start()
        if self.healthy:
            self._send_new_proxy()

    def _health_ok(self) -> None:
        self.healthy = True
        log.info("[%s] health check success", self.wire_name)
        if self.control is not None and self.status in ("new", "check failed"):
            self._send_new_proxy()

    def _health_failed(self) -> None:
        self.healthy = False
        log.info("[%s] health check failed", self.wire_name)
        if self.status in ("running", "wait start"):
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.control is not None:
                self.control.send(m.CloseProxy(proxy_name=self.wire_name))
            self.status = "check failed"

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
        if self.status in ("wait start", "start error") and self.healthy:
            self._send_new_proxy()

    def on_start_resp(self, resp: m.NewProxyResp) -> None:
        if self.status != "wait start":  # e.g. closed by a failed health check meanwhile (Go ignores it too)
            log.debug("[%s] status not wait start, ignore start message", self.wire_name)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if resp.error:
            self.status = "start error"
            self.err = resp.error
            log.warning("[%s] start error: %s", self.wire_name, resp.error)
            self._set_timer(START_ERROR_RETRY)
            self.client.proxy_start_failed(self.name, resp.error)
            return
        self.status = "running"
        self.err = ""
        self.remote_addr = resp.remote_addr
        log.info("[%s] start proxy success", self.wire_name)
        if self.cfg.type in ("tcp", "udp") and resp.remote_addr.startswith(":"):
            log.info("[%s] remote address [%s]", self.wire_name, self.public_addr(resp.remote_addr))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.control = None
        # the control is gone: like Go's fresh wrapper at the next login, nothing is known yet
        self.status, self.err, self.remote_addr = "new", "", ""

    def close(self) -> None:
        """frpc is stopping: no more health checks."""
        self.stop()
        if self.monitor is not None:
            self.monitor.stop()

    async def handle_work_conn(self, conn: MsgConn, start: m.StartWorkConn) -> None:
        handler = HANDLERS.get(self.cfg.type)
        if handler is None:
            log.warning("[%s] proxy type %s has no handler", self.wire_name, self.cfg.type)
            conn.close()
            return
        await handler(self, conn, start)

    def status_dict(self) -> dict[str, Any]:
        """This proxy in ``/api/status`` (Go's ProxyStatusResp): the name carries the user prefix,
        ``remote_addr`` is kept whenever ``err`` is empty (tcp/udp: prefixed with serverAddr)."""
        local = ""
        if getattr(self.cfg, "local_port", 0):
            local = join_host_port(self.cfg.local_ip, self.cfg.local_port)
        remote = ""
        if not self.err:
            remote = self.remote_addr
            if self.cfg.type in ("tcp", "udp"):
                remote = self.public_addr(remote)
        plugin = getattr(self.cfg, "plugin", None)
        return {
            "name": self.wire_name,
            "type": self.cfg.type,
            "status": self.status,
            "err": self.err,
            "local_addr": local,
            "plugin": getattr(plugin, "type", "") if plugin is not None else "",
            "remote_addr": remote,
        }

    def public_addr(self, remote: str) -> str:
        """frps's ``:PORT`` answer as ``serverAddr:PORT`` (``[v6]:PORT``); Go prepends serverAddr
        to whatever came back (so ``""`` gives serverAddr alone)."""
        server = self.client.cfg.server_addr
        if remote.startswith(":") and remote[1:].isdigit():
            return join_host_port(server, remote[1:])
        return server + remote
