"""http proxy: routes on frps's vhost HTTP port; each request goes over a work connection.

Work connections of an http proxy speak HTTP/1.1 to the local service; idle ones are kept in
the proxy's :class:`~aiofrp.server.vhost.http_upstream.UpstreamPool` for later requests.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...net.msgconn import MsgConn
from ..errors import ProxyError
from ..vhost import Route, build_domains, canonical_addr
from ..vhost.http import HTTPMember
from ..vhost.http_upstream import Upstream, UpstreamPool
from . import register
from .base import ProxyControl, VhostProxy

if TYPE_CHECKING:
    from ...proto import msg as m

log = logging.getLogger("aiofrp.server.proxy.http")


@register("http")
class HTTPProxy(VhostProxy[HTTPMember]):
    def __init__(self, control: ProxyControl, req: m.NewProxy) -> None:
        super().__init__(control, req)
        self.pool = UpstreamPool()
        self.upstreams: set[Upstream] = set()  # work connections open (idle or busy), for statistics

    NOT_SERVED = "type [http] not supported when vhost http port is not set"

    def served(self) -> bool:
        return bool(self.server.cfg.vhost_http_port) and self.server.http_vhost is not None

    async def run(self) -> None:
        cfg = self.server.cfg
        vhost = self.server.http_vhost
        if vhost is None:  # validate() said so already
            raise ProxyError(self.NOT_SERVED)
        req = self.req
        domains = build_domains(req.custom_domains, req.subdomain, cfg.subdomain_host)
        locations = req.locations or [""]
        routes: list[Route[HTTPMember]] = [
            Route(domain, location, req.route_by_http_user, http_user=req.http_user, http_pwd=req.http_pwd,
                  host_rewrite=req.host_header_rewrite, headers=req.headers, response_headers=req.response_headers)
            for domain in domains for location in locations
        ]
        await self._register_routes(vhost.router, routes, self)
        for r in routes:
            self.xl.on(log).info("http proxy listen for host [%s] location [%s] group [%s], routeByHTTPUser [%s]",
                                 r.domain, r.location, req.group, r.route_by_http_user)
        self.remote_addr = ",".join(canonical_addr(d, cfg.vhost_http_port) for d in domains for _ in locations)

    def new_upstream(self, conn: MsgConn, peer: tuple[str, int]) -> Upstream:
        """A work connection for HTTP requests; StartWorkConn carries the client address only, as
        Go does for http."""
        work = self.start_work_conn(conn, peer)
        up = Upstream(self, work.transport, work.encode, work.decode)
        self.upstreams.add(up)
        self.server.stats.open_conn(self.name)
        if work.data:
            self.xl.on(log).debug("%d unexpected bytes before the first request", len(work.data))
        return up

    def upstream_done(self, up: Upstream) -> None:
        """A work connection closed or became a raw relay: its request/response bytes are counted."""
        if up in self.upstreams:
            self.upstreams.discard(up)
            self.server.stats.close_conn(self.name, up.nin, up.nout)

    def live_traffic(self) -> tuple[int, int]:
        nin, nout = super().live_traffic()
        for up in self.upstreams:
            nin += up.nin
            nout += up.nout
        return nin, nout

    def close(self) -> None:
        self.pool.close()
        super().close()
