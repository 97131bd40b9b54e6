"""Authentication of frpc to frps (frp's ``pkg/auth``): one small interface, one module per method.

frpc holds a :class:`Setter`: it fills the auth fields (``privilege_key``, ``timestamp``) of the
Login, and of Ping / NewWorkConn when ``auth.additionalScopes`` has ``HeartBeats`` /
``NewWorkConns``. frps holds a :class:`Verifier`: ``verify_login`` checks a Login and returns the
:class:`LoginAuth` of that login, which checks the control's later Pings and work connections
(the scopes *frps* has configured). Both sides are async: the OIDC method talks HTTP.

Methods (``auth.method``): ``token`` (:mod:`.token`, MD5 of the shared token, §3.1) and ``oidc``
(:mod:`.oidc`, an OAuth2 client-credentials access token verified as a JWT, §3.3).

A refusal raises :class:`AuthError` whose text is Go frp's (frps sends it to frpc when
``detailedErrorsToClient``, and logs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config.client import AuthClientConfig
    from ..config.server import AuthServerConfig
    from ..proto import msg as m

HEARTBEATS = "heartbeats"
NEW_WORK_CONNS = "newworkconns"


class AuthError(Exception):
    """Authentication failed (frps: refused; frpc: no credentials to send). ``str()`` is Go's text."""


class Setter(Protocol):
    """frpc: fills the auth fields of outgoing messages (Go ``auth.Setter``)."""

    async def set_login(self, login: m.Login) -> None: ...

    async def set_ping(self, ping: m.Ping) -> None: ...

    async def set_new_work_conn(self, msg: m.NewWorkConn) -> None: ...


class LoginAuth(Protocol):
    """frps: what one accepted Login proved; checks that control's Pings and work connections."""

    async def verify_ping(self, ping: m.Ping) -> None: ...

    async def verify_new_work_conn(self, msg: m.NewWorkConn) -> None: ...

    @property
    def checks_work_conns(self) -> bool:
        """verify_new_work_conn checks something (``auth.additionalScopes`` has NewWorkConns);
        frps accepts the client's work connections without asking it when not."""
        ...


class Verifier(Protocol):
    """frps: checks Logins (Go ``auth.Verifier``)."""

    async def verify_login(self, login: m.Login) -> LoginAuth: ...

    async def start(self) -> None:
        """Called once when frps starts (OIDC: fetch the issuer's discovery document)."""
        ...


def scopes_of(additional_scopes: list[str]) -> frozenset[str]:
    """``auth.additionalScopes`` as lower-case names (frp compares them case-insensitively)."""
    return frozenset(s.lower() for s in additional_scopes)


def new_setter(auth: AuthClientConfig, source: str = "frpc config", *, transport_proxy_url: str = "") -> Setter:
    """The frpc side of ``auth.method``. Raises ``ConfigError`` for settings that cannot work
    (an unreadable ``trustedCaFile``, a bad ``proxyURL``). ``transport_proxy_url``: frpc's
    ``transport.proxyURL``, which OIDC token requests use when ``auth.oidc.proxyURL`` is unset."""
    scopes = scopes_of(list(auth.additional_scopes))
    if auth.method == "oidc":
        from .oidc import OIDCSetter, TokenSourceSetter

        if auth.oidc.token_source is not None:
            return TokenSourceSetter(scopes, auth.oidc.token_source, source)
        return OIDCSetter(scopes, auth.oidc, source, transport_proxy_url=transport_proxy_url)
    from .token import TokenAuth

    return TokenAuth(scopes, auth.token)


def new_verifier(auth: AuthServerConfig) -> Verifier:
    """The frps side of ``auth.method``."""
    scopes = scopes_of(list(auth.additional_scopes))
    if auth.method == "oidc":
        from .oidc import OIDCVerifier

        return OIDCVerifier(scopes, auth.oidc)
    from .token import TokenAuth

    return TokenAuth(scopes, auth.token)


class _AlwaysPass:
    """Go ``auth.AlwaysPassVerifier``: what an internal client that needs no auth proved (frps's
    ssh tunnel gateway when the ssh key was checked against ``authorizedKeysFile``)."""

    async def verify_ping(self, ping: m.Ping) -> None:
        pass

    async def verify_new_work_conn(self, msg: m.NewWorkConn) -> None:
        pass

    checks_work_conns = False


ALWAYS_PASS: LoginAuth = _AlwaysPass()
