"""xtcp proxy: no listener; the NAT-hole controller reaches the provider through work connections."""

from __future__ import annotations

import logging

from ...proto import msg as m
from . import register
from .base import ServerProxy

log = logging.getLogger("aiofrp.server.proxy.xtcp")


@register("xtcp")
class XTCPProxy(ServerProxy):
    async def run(self) -> None:
        # empty allow_users: only the owner's user may visit
        allow_users = list(self.req.allow_users) or [self.control.user]
        self.server.nathole.listen_client(self.name, self.req.sk, allow_users, self)

    async def send_sid(self, sid: str) -> None:
        """Tell the provider about a new hole-punching session on one of its work connections."""
        if self.closed:
            return
        try:
            work = await self.control.get_work_conn()
        except (TimeoutError, ConnectionError) as exc:
            self.xl.on(log).warning("failed to get work connection for nathole sid [%s]: %s", sid, exc)
            return
        work.write_msg(m.StartWorkConn(proxy_name=self.name))
        work.write_msg(m.NatHoleSid(sid=sid))
        work.close()

    def close(self) -> None:
        super().close()
        self.server.nathole.close_client(self.name, self)
