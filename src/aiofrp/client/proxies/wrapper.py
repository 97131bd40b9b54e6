"""The proxy wrapper: frp's status machine for one configured proxy (Go's
``client/proxy/proxy_wrapper.go``): new -> wait start -> running | start error, and check failed
while a health check fails. The :class:`~aiofrp.client.proxies.base.Proxy` it wraps serves the
work connections."""

from __future__ import annotations

import asyncio
import enum
from typing import TYPE_CHECKING, NotRequired, TypedDict

from ...config.client import proxy_wire_name
from ...config.proxy import ProxyBaseConfig
from ...proto import msg as m
from ...proto.addr import join_host_port
from ..health import HealthMonitor
from ..plugins import PluginError
from . import new_proxy

if TYPE_CHECKING:
    from ...net.msgconn import MsgConn
    from ..transporter import MessageTransporter
    from .base import ProxyHost


START_RESP_TIMEOUT = 20.0
START_ERROR_RETRY = 30.0


class ProxyPhase(enum.StrEnum):
    """A proxy's status, with frp's names (Go's ``ProxyPhase*``; ``/api/status`` shows them)."""

    NEW = "new"
    WAIT_START = "wait start"
    START_ERROR = "start error"
    RUNNING = "running"
    CHECK_FAILED = "check failed"
    CLOSED = "closed"


class ProxyStatus(TypedDict):
    """One proxy in ``/api/status`` (Go's ``ProxyStatusResp``), keys in Go's order."""

    name: str
    type: str
    status: str
    err: str
    local_addr: str
    plugin: str
    remote_addr: str
    source: NotRequired[str]
    """``"store"`` for a proxy of the store (frp >= 0.68); absent otherwise."""


# NewProxy field <- config attribute, for the attributes only some proxy types have (set when not empty)
_TYPE_FIELDS = {
    "remote_port": "remote_port", "custom_domains": "custom_domains", "subdomain": "subdomain",
    "locations": "locations", "http_user": "http_user", "http_pwd": "http_password",
    "host_header_rewrite": "host_header_rewrite", "route_by_http_user": "route_by_http_user",
    "sk": "secret_key", "allow_users": "allow_users", "multiplexer": "multiplexer",
}


def new_proxy_msg(client: ProxyHost, cfg: ProxyBaseConfig) -> m.NewProxy:
    """NewProxy for a proxy config (Go's ``MarshalToMsg``): only the fields that apply to its
    type are set."""
    t = cfg.transport
    msg = m.NewProxy(
        proxy_name=proxy_wire_name(client.cfg, cfg.name),
        proxy_type=cfg.type,
        use_encryption=t.use_encryption,
        use_compression=t.use_compression,
        bandwidth_limit=t.bandwidth_limit,
        bandwidth_limit_mode="server" if t.bandwidth_limit_mode == "server" else "",
        group=cfg.load_balancer.group,
        group_key=cfg.load_balancer.group_key,
        metas=dict(cfg.metadatas),
        annotations=dict(cfg.annotations),
    )
    for wire, attr in _TYPE_FIELDS.items():
        v = getattr(cfg, attr, None)
        if v:
            setattr(msg, wire, list(v) if isinstance(v, (list, tuple)) else v)
    for wire, attr in (("headers", "request_headers"), ("response_headers", "response_headers")):
        ops = getattr(cfg, attr, None)
        if ops is not None and ops.set:
            setattr(msg, wire, dict(ops.set))
    return msg


class ProxyWrapper:
    def __init__(self, client: ProxyHost, cfg: ProxyBaseConfig) -> None:
        self.client = client
        self.cfg = cfg
        self.name = cfg.name
        self.proxy = new_proxy(client, cfg)
        self.wire_name = self.proxy.name
        self.xl = self.proxy.xl  # the proxy's prefixes, on the same logger (client.proxy)
        self.phase = ProxyPhase.NEW
        self.err = ""
        self.remote_addr = ""
        self.control: MessageTransporter | None = None
        self._timer: asyncio.TimerHandle | None = None
        # With a health check the proxy is registered only while the local service is healthy.
        self.monitor: HealthMonitor | None = None
        self.healthy = True
        hc = cfg.health_check
        if hc.type and cfg.local_port:
            self.healthy = False
            self.monitor = HealthMonitor(self.wire_name, hc, cfg.local_ip, cfg.local_port,
                                         self._health_ok, self._health_failed, xl=self.xl)

    @property
    def running(self) -> bool:
        return self.phase is ProxyPhase.RUNNING

    def start(self, control: MessageTransporter) -> None:
        self.control = control
        # Go makes the proxy's xlog anew at each login: "[RUNID] [NAME] " (the run id of this login)
        self.xl.set(control.run_id, self.wire_name)
        if self.monitor is not None:
            self.monitor.start()
        if self.healthy:
            self._send_new_proxy()

    def _health_ok(self) -> None:
        self.healthy = True
        self.xl.info("health check success")
        if self.control is not None and self.phase in (ProxyPhase.NEW, ProxyPhase.CHECK_FAILED):
            self._send_new_proxy()

    def _health_failed(self) -> None:
        self.healthy = False
        self.xl.info("health check failed")
        if self.phase in (ProxyPhase.RUNNING, ProxyPhase.WAIT_START):
            self._cancel_timer()
            if self.control is not None:
                self.control.send(m.CloseProxy(proxy_name=self.wire_name))
            self.phase = ProxyPhase.CHECK_FAILED

    def _send_new_proxy(self) -> None:
        if self.control is None:
            return
        self.phase = ProxyPhase.WAIT_START
        self.control.send(new_proxy_msg(self.client, self.cfg))
        self._set_timer(START_RESP_TIMEOUT)

    def _set_timer(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._retry)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _retry(self) -> None:
        self._timer = None
        if self.phase in (ProxyPhase.WAIT_START, ProxyPhase.START_ERROR) and self.healthy:
            self._send_new_proxy()

    def on_start_resp(self, resp: m.NewProxyResp) -> None:
        if self.phase is not ProxyPhase.WAIT_START:  # e.g. closed by a failed health check meanwhile (Go too)
            self.xl.debug("status not wait start, ignore start message")
            return
        self._cancel_timer()
        error = resp.error
        if not error and self.control is not None:
            try:
                self.proxy.run(self.control)
            except PluginError as exc:  # as Go: the proxy is closed on frps and retried later
                self.control.send(m.CloseProxy(proxy_name=self.wire_name))
                error = str(exc)
        if error:
            self.phase = ProxyPhase.START_ERROR
            self.err = error
            self.xl.warning("start error: %s", error)
            self._set_timer(START_ERROR_RETRY)
            self.client.proxy_start_failed(self.name, error)
            return
        self.phase = ProxyPhase.RUNNING
        self.err = ""
        self.remote_addr = resp.remote_addr
        self.xl.info("start proxy success")
        if self.cfg.type in ("tcp", "udp") and resp.remote_addr.startswith(":"):
            self.xl.info("remote address [%s]", self.public_addr(resp.remote_addr))

    def stop(self) -> None:
        """The control session ended: work connections stop; the proxy starts anew at the next login."""
        self._cancel_timer()
        self.control = None
        self.proxy.close()
        # like Go's fresh wrapper at the next login, nothing is known yet
        self.phase, self.err, self.remote_addr = ProxyPhase.NEW, "", ""

    def close(self) -> None:
        """frpc is stopping: no more health checks."""
        self.stop()
        if self.monitor is not None:
            self.monitor.stop()

    def remove(self) -> None:
        """Taken out of the config by a reload (Go's ``Wrapper.Stop``): frps is told with a
        CloseProxy, health checks end; work connections already relaying are left to finish."""
        control = self.control
        self.close()
        self.phase = ProxyPhase.CLOSED
        if control is not None:
            control.send(m.CloseProxy(proxy_name=self.wire_name))

    async def handle_work_conn(self, conn: MsgConn, start: m.StartWorkConn) -> None:
        await self.proxy.handle_work_conn(conn, start)

    def status(self) -> ProxyStatus:
        """This proxy in ``/api/status`` (Go's ProxyStatusResp): the name carries the user prefix,
        ``remote_addr`` is kept whenever ``err`` is empty (tcp/udp: prefixed with serverAddr)."""
        cfg = self.cfg
        local = join_host_port(cfg.local_ip, cfg.local_port) if cfg.local_port else ""
        remote = ""
        if not self.err:
            remote = self.remote_addr
            if cfg.type in ("tcp", "udp"):
                remote = self.public_addr(remote)
        return {
            "name": self.wire_name,
            "type": cfg.type,
            "status": self.phase.value,
            "err": self.err,
            "local_addr": local,
            "plugin": cfg.plugin.type if cfg.plugin is not None else "",
            "remote_addr": remote,
        }

    def public_addr(self, remote: str) -> str:
        """frps's ``:PORT`` answer as ``serverAddr:PORT`` (``[v6]:PORT``); Go prepends serverAddr
        to whatever came back (so ``""`` gives serverAddr alone)."""
        server = self.client.cfg.server_addr
        if remote.startswith(":") and remote[1:].isdigit():
            return join_host_port(server, remote[1:])
        return server + remote
