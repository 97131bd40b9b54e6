"""``auth.method = "token"`` (§3.1): ``privilege_key = md5(token + timestamp)``, Go's ``token.go``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..proto.crypto import auth_key, verify_auth_key
from . import HEARTBEATS, NEW_WORK_CONNS, AuthError

if TYPE_CHECKING:
    from ..proto import msg as m


class TokenAuth:
    """Setter and verifier at once (the same token on both sides); a login proves nothing more."""

    def __init__(self, scopes: frozenset[str], token: str) -> None:
        self.scopes = scopes
        self.token = token

    # -- frpc ----------------------------------------------------------------------------------

    async def set_login(self, login: m.Login) -> None:
        login.timestamp = int(time.time())
        login.privilege_key = auth_key(self.token, login.timestamp)

    async def set_ping(self, ping: m.Ping) -> None:
        if HEARTBEATS in self.scopes:
            ping.timestamp = int(time.time())
            ping.privilege_key = auth_key(self.token, ping.timestamp)

    async def set_new_work_conn(self, msg: m.NewWorkConn) -> None:
        if NEW_WORK_CONNS in self.scopes:
            msg.timestamp = int(time.time())
            msg.privilege_key = auth_key(self.token, msg.timestamp)

    # -- frps ----------------------------------------------------------------------------------

    async def start(self) -> None:
        pass

    async def verify_login(self, login: m.Login) -> TokenAuth:
        if not verify_auth_key(self.token, login.timestamp, login.privilege_key):
            raise AuthError("token in login doesn't match token from configuration")
        return self

    async def verify_ping(self, ping: m.Ping) -> None:
        if HEARTBEATS in self.scopes and not verify_auth_key(self.token, ping.timestamp, ping.privilege_key):
            raise AuthError("token in heartbeat doesn't match token from configuration")

    @property
    def checks_work_conns(self) -> bool:
        return NEW_WORK_CONNS in self.scopes

    async def verify_new_work_conn(self, msg: m.NewWorkConn) -> None:
        if NEW_WORK_CONNS in self.scopes and not verify_auth_key(self.token, msg.timestamp, msg.privilege_key):
            raise AuthError("token in NewWorkConn doesn't match token from configuration")
