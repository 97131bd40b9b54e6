"""``auth.method = "oidc"`` with our frps and frpc as real processes and the local mock provider.

Login, ``auth.additionalScopes`` (Pings and work connections carry verified tokens), token caching
and refresh, key rotation, an HTTPS provider, the refusals (wrong secret, audience, issuer, an
expired token, detailedErrorsToClient = false) with Go's texts on both ends, and a provider that
is down when frps starts. Go peers: tests/compat/test_go_oidc.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.oidc import MockOIDC, TestCA, frpc_oidc, frps_oidc
from support.procs import TEST_STRING, free_port, tcp_proxy, tcp_roundtrip, wait_port
from support.waits import frame, poll

pytestmark = pytest.mark.timeout(90)

SCOPES = ["HeartBeats", "NewWorkConns"]


@pytest.fixture
def idp() -> Iterator[MockOIDC]:
    with MockOIDC(clients={"frpc": "s3cret", "frpc2": "other"}) as p:
        yield p


def echo(port: int) -> None:
    assert tcp_roundtrip(port, frame(TEST_STRING), 5) == frame(TEST_STRING)


def start(frp, idp: MockOIDC, echo_port: int, *, server: dict | None = None, client: dict | None = None):
    bind, remote = free_port(), free_port()
    frps = frp.ours_frps(frps_oidc(bind, idp, **(server or {})))
    wait_port(bind, 10)
    frpc = frp.ours_frpc(frpc_oidc(bind, idp, tcp_proxy("echo", echo_port, remote), **(client or {})))
    return frps, frpc, bind, remote


def test_login_proxies_and_scopes(frp, idp: MockOIDC, echo_server) -> None:
    hb = "transport.heartbeatInterval = 1\n"
    frps, frpc, _, remote = start(
        frp, idp, echo_server.port,
        server={"audience": "frps", "scopes": SCOPES, "extra": 'log.level = "debug"\n'},
        client={"audience": "frps", "scopes": SCOPES, "extra": hb},
    )
    frpc.wait_login(15)
    frpc.wait_for_proxies("echo")
    for _ in range(5):  # each user connection takes a work connection whose token frps checks
        echo(remote)
    poll(lambda: frps.log_text().count("receive heartbeat") >= 3, 10, "three verified pings")
    log = frps.log_text()
    assert "invalid" not in log and "failed" not in log, log
    # one token for the login, the pings and the work connections (cached until shortly before expiry)
    (req,) = idp.token_requests
    assert req.basic_auth() == ("frpc", "s3cret")
    assert req.form == {"grant_type": "client_credentials", "scope": "", "audience": "frps"}
    assert len(idp.discovery_requests) == 1 and len(idp.jwks_requests) == 1


def test_token_is_refreshed_before_it_expires(frp, idp: MockOIDC, echo_server) -> None:
    idp.lifetime = 12  # reused for 2 s (replaced 10 s before expiry)
    frps, frpc, _, remote = start(
        frp, idp, echo_server.port, server={"scopes": ["HeartBeats"]},
        client={"scopes": ["HeartBeats"], "extra": "transport.heartbeatInterval = 1\n"},
    )
    frpc.wait_login(15)
    poll(lambda: len(idp.token_requests) >= 3, 15, "the token refreshed twice")
    echo(remote)
    assert frpc.log_text().count("login to server success") == 1  # the control stayed up
    assert "invalid" not in frps.log_text() and "pong message contains error" not in frpc.log_text()


def _refusal_case(idp: MockOIDC, case: str) -> tuple[dict, dict, str]:
    """(frps options, frpc options, the expected refusal) for one case."""
    issuer = idp.issuer
    if case == "wrong-secret":
        return {}, {"secret": "nope"}, ""
    if case == "wrong-audience":
        return ({"audience": "frps"}, {"audience": "other"},
                'invalid OIDC token in login: oidc: expected audience "frps" got ["other"]')
    if case == "wrong-issuer":
        idp.issuer_override = "https://evil.example"
        return ({}, {}, ("invalid OIDC token in login: oidc: id token issued by a different provider, "
                        f'expected "{issuer}" got "https://evil.example"'))
    if case == "expired":
        idp.claims_override = {"exp": 1700000000}
        return {}, {}, "invalid OIDC token in login: oidc: token is expired (Token Expiry: "
    assert case == "not-detailed"
    return ({"audience": "frps", "extra": "detailedErrorsToClient = false\n"}, {"audience": "other"},
            'invalid OIDC token in login: oidc: expected audience "frps" got ["other"]')


@pytest.mark.parametrize("case", ["wrong-secret", "wrong-audience", "wrong-issuer", "expired", "not-detailed"])
def test_refusals(frp, idp: MockOIDC, echo_server, case: str) -> None:
    server, client, expected = _refusal_case(idp, case)
    client["extra"] = client.get("extra", "") + "loginFailExit = true\n"
    bind, remote = free_port(), free_port()
    frps = frp.ours_frps(frps_oidc(bind, idp, **server))
    wait_port(bind, 10)
    text = frpc_oidc(bind, idp, tcp_proxy("echo", echo_server.port, remote), **client)
    frpc = frp.ours_frpc(text.replace("loginFailExit = false\n", ""))
    assert frpc.wait_exit(20) == 1
    flog = frpc.log_text()
    if case == "wrong-secret":
        # nothing reaches frps: the token request failed first
        assert ('connect to server error: couldn\'t generate OIDC token for login: '
                'oauth2: "invalid_client" "bad client credentials"') in flog, flog
        assert "login from" not in frps.log_text()
        return
    ts = re.escape(expected)
    frps.wait_for_log(rf"\[W\] .*login from 127\.0\.0\.1:\d+ failed: {ts}", 5)
    sent = "register control error" if case == "not-detailed" else expected
    assert f"connect to server error: {sent}" in flog, flog
    assert "start proxy success" not in flog


def test_key_rotation(frp, idp: MockOIDC, echo_server) -> None:
    _frps, frpc, bind, _remote = start(frp, idp, echo_server.port)
    frpc.wait_login(15)
    idp.rotate()  # a new signing key; the old one leaves the JWKS
    remote2 = free_port()
    frpc2 = frp.ours_frpc(frpc_oidc(bind, idp, tcp_proxy("echo2", echo_server.port, remote2),
                                    client_id="frpc2", secret="other"))
    frpc2.wait_login(15)
    frpc2.wait_for_proxies("echo2")
    echo(remote2)
    assert len(idp.jwks_requests) == 2  # the unknown kid made frps fetch the keys again


def test_https_provider(frp, echo_server, tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    with MockOIDC(ca=ca) as idp:
        bind, remote = free_port(), free_port()
        frp.ours_frps(frps_oidc(bind, idp), env={**os.environ, "SSL_CERT_FILE": str(ca.ca_file)})
        wait_port(bind, 10)
        frpc = frp.ours_frpc(frpc_oidc(bind, idp, tcp_proxy("echo", echo_server.port, remote),
                                       extra=f'auth.oidc.trustedCaFile = "{ca.ca_file}"\n'))
        frpc.wait_for_proxies("echo", timeout=15)
        echo(remote)


def test_provider_down_when_frps_starts(frp, idp: MockOIDC, echo_server) -> None:
    idp.mode["/.well-known/openid-configuration"] = "500"
    frps, frpc, _, remote = start(frp, idp, echo_server.port)
    frps.wait_for_log(r"\[E\] .*oidc: cannot use issuer .*logins are refused until it answers", 10)
    frps.wait_for_log(r"login from 127\.0\.0\.1:\d+ failed: invalid OIDC token in login: "
                      r"500 Internal Server Error: internal error", 10)
    assert frps.running  # Go frps exits (panic) here; we keep serving and retry
    idp.mode.clear()
    frpc.wait_for_proxies("echo", timeout=30)
    echo(remote)


@pytest.mark.parametrize("scope", SCOPES)
def test_scopes_required_by_frps_only(frp, idp: MockOIDC, echo_server, scope: str) -> None:
    """frps checks the scopes *it* has; a frpc that sends no token there is refused (Go's texts)."""
    frps, frpc, _, _ = start(frp, idp, echo_server.port, server={"scopes": [scope]},
                             client={"extra": "transport.heartbeatInterval = 1\n"})
    frpc.wait_login(15)
    bad = re.escape("invalid OIDC token in ping: oidc: malformed jwt: oidc: malformed jwt, expected 3 parts got 1")
    if scope == "HeartBeats":
        frps.wait_for_log(r"received invalid ping: " + bad, 10)
        frpc.wait_for_log(r"pong message contains error: " + bad, 10)  # then frpc reconnects, as Go's does
    else:
        frps.wait_for_log(r"work connection .*refused: " + bad, 10)
        frpc.wait_for_log(r"StartWorkConn contains error: " + bad, 10)
