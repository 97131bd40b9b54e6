"""The server manage plugins of one frps, by operation (Go: pkg/plugin/server/manager.go).

For each operation the plugins that subscribed to it are asked in the configured order; each sees
the content as the previous one left it (``unchange = false`` replaces it; NewUserConn too, though
frps does not use the result). The first rejection or failed request ends the chain and refuses
the operation:

* a rejection's error is its ``reject_reason`` (Go sends an empty reason on as an empty error,
  which frpc takes for success; we say ``rejected by plugin [name]`` instead);
* a failed request (unreachable, not 200, an answer Go's ``json.Unmarshal`` refuses, also for a
  bad ``content`` next to ``"reject": true`` or ``"unchange": true``, too slow) is logged as
  ``[reqid: ...] send <Op> request to plugin [name] error: ...`` and refuses the operation with
  ``send <Op> request to plugin error``.

CloseProxy is a notification: every subscribed plugin is told, failures are only logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ...proto import msg as m
from ...proto.errors import ProtocolError
from .http import HTTPPlugin, PluginError
from .types import (
    LoginContent,
    NewUserConnContent,
    Op,
    Response,
    UserInfo,
    decode_content,
    decode_user,
    with_user,
)

if TYPE_CHECKING:
    from ...config.server import HTTPPluginOptions

log = logging.getLogger("aiofrp.server.plugin")

C = TypeVar("C")
W = TypeVar("W", m.NewProxy, m.Ping, m.NewWorkConn)


class PluginRefused(Exception):
    """A plugin rejected the operation (``rejected``), or asking one failed (the client is not to
    blame: fail2ban should not count it); ``str()`` is the error for frpc."""

    def __init__(self, message: str, *, rejected: bool) -> None:
        super().__init__(message)
        self.rejected = rejected


def new_reqid() -> str:
    """Go's ``util.RandID()``: 16 hex digits."""
    return os.urandom(8).hex()


class Manager:
    def __init__(self, options: Sequence[HTTPPluginOptions]) -> None:
        self.plugins = [HTTPPlugin(o) for o in options]
        self._by_op: dict[Op, list[HTTPPlugin]] = {op: [p for p in self.plugins if p.supports(op)] for op in Op}
        for p in self.plugins:
            log.info("plugin [%s] has been registered", p.name)

    def has(self, op: Op) -> bool:
        return bool(self._by_op[op])

    async def close(self) -> None:
        for p in self.plugins:
            await p.close()

    # -- the operations ---------------------------------------------------------------------------

    async def login(self, login: m.Login, client_address: str) -> m.Login:
        """The Login as the plugins leave it (``client_address``: the peer, ``ip:port``)."""
        if not self.has(Op.LOGIN):
            return login
        content = LoginContent(**_fields(login), client_address=client_address)
        content = await self._chain(Op.LOGIN, content, m.go_json, lambda res: decode_content(LoginContent, res))
        return m.Login(**_fields(content, m.Login))

    async def new_proxy(self, user: UserInfo, req: m.NewProxy) -> m.NewProxy:
        return await self._with_user(Op.NEW_PROXY, user, req)

    async def ping(self, user: UserInfo, ping: m.Ping) -> m.Ping:
        return await self._with_user(Op.PING, user, ping)

    async def new_work_conn(self, user: UserInfo, msg: m.NewWorkConn) -> m.NewWorkConn:
        return await self._with_user(Op.NEW_WORK_CONN, user, msg)

    async def new_user_conn(self, user: UserInfo, proxy_name: str, proxy_type: str, remote_addr: str) -> None:
        """Raises :class:`PluginRefused` if the user connection must be closed."""
        if not self.has(Op.NEW_USER_CONN):
            return
        content = NewUserConnContent(user, proxy_name, proxy_type, remote_addr)
        # a rewritten content goes on to the next plugin (as Go); frps itself does not use it
        await self._chain(Op.NEW_USER_CONN, content, m.go_json, lambda res: decode_content(NewUserConnContent, res))

    async def close_proxy(self, user: UserInfo, proxy_name: str) -> None:
        """Tell every CloseProxy plugin; errors are logged only (Go: a goroutine per close)."""
        plugins = [p for p in self._by_op[Op.CLOSE_PROXY] if not p.closed]
        if not plugins:
            return
        reqid = new_reqid()
        body = with_user(user, m.CloseProxy(proxy_name=proxy_name))
        for p in plugins:
            try:
                await p.handle(Op.CLOSE_PROXY, body, reqid)
            except PluginError as exc:
                log.warning("[reqid: %s] send CloseProxy request to plugin [%s] error: %s", reqid, p.name, exc)

    # -- the chain --------------------------------------------------------------------------------

    async def _with_user(self, op: Op, user: UserInfo, msg: W) -> W:
        """The ops whose content is ``{"user": {...}, <msg's fields>}``."""
        if not self.has(op):
            return msg
        cls = type(msg)

        def decode(res: Response) -> tuple[UserInfo, W]:
            return decode_user(res), decode_content(cls, res)

        _, msg = await self._chain(op, (user, msg), lambda c: with_user(*c), decode)
        return msg

    async def _chain(self, op: Op, content: C, encode: Callable[[C], bytes], decode: Callable[[Response], C]) -> C:
        reqid = new_reqid()
        for p in self._by_op[op]:
            try:
                res = await p.handle(op, encode(content), reqid)
                if res.reject:
                    raise PluginRefused(res.reject_reason or f"rejected by plugin [{p.name}]", rejected=True)
                if not res.unchange:
                    try:
                        content = decode(res)
                    except ProtocolError as exc:
                        raise PluginError(str(exc)) from None
            except PluginError as exc:
                # Go logs a failed NewUserConn request at info level, the others as warnings
                level = logging.INFO if op is Op.NEW_USER_CONN else logging.WARNING
                log.log(level, "[reqid: %s] send %s request to plugin [%s] error: %s", reqid, op.value, p.name, exc)
                raise PluginRefused(f"send {op.value} request to plugin error", rejected=False) from None
        return content


def _fields(obj: m.Login, cls: type[m.Login] | None = None) -> dict[str, Any]:
    """The fields of a Login (of ``cls``'s fields only, if given) as keyword arguments."""
    names = (cls or type(obj)).__struct_fields__
    return {name: getattr(obj, name) for name in names}
