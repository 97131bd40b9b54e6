"""OIDC between Go frp 0.65.0 and ours, both ways, against the local mock provider.

* Go frpc (client credentials, audience, both additionalScopes) -> our frps, over HTTP and HTTPS
  providers: logs in, serves a proxy, its pings and work connections pass our checks; its token
  request is the same as our frpc's (form fields, HTTP Basic credentials).
* our frpc -> Go frps: the same, Go frps accepting our login, pings and work connections.
* refusals: for a wrong audience, a wrong issuer, an expired token and a null ``exp``, our frps
  answers the same LoginResp error text as Go frps does; a wrong client secret reads the same in
  Go frpc's log as in ours.
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

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

SCOPES = ["HeartBeats", "NewWorkConns"]
HB = "transport.heartbeatInterval = 1\n"


@pytest.fixture
def idp() -> Iterator[MockOIDC]:
    with MockOIDC() as p:
        yield p


def echo(port: int) -> None:
    assert tcp_roundtrip(port, frame(TEST_STRING), 5) == frame(TEST_STRING)


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_go_frpc_to_our_frps(frp, echo_server, tmp_path: Path, https: bool) -> None:
    ca = TestCA(tmp_path / "ca") if https else None
    with MockOIDC(ca=ca) as idp:
        bind, remote = free_port(), free_port()
        env = {**os.environ, "SSL_CERT_FILE": str(ca.ca_file)} if ca else None
        frps = frp.ours_frps(frps_oidc(bind, idp, audience="frps", scopes=SCOPES, extra='log.level = "debug"\n'),
                             env=env)
        wait_port(bind, 10)
        tls = f'auth.oidc.trustedCaFile = "{ca.ca_file}"\n' if ca else ""
        frpc = frp.go_frpc(frpc_oidc(bind, idp, tcp_proxy("echo", echo_server.port, remote), audience="frps",
                                     scopes=SCOPES, extra=HB + tls))
        frpc.wait_for_proxies("echo", timeout=20)
        for _ in range(3):
            echo(remote)
        poll(lambda: frps.log_text().count("receive heartbeat") >= 2, 10, "verified pings from Go frpc")
        log = frps.log_text()
        assert "invalid" not in log and "failed" not in log, log
        go_req = idp.token_requests[0]
        # Go 0.65 asks for a token per message (login, pings, work connections)
        assert len(idp.token_requests) >= 4
        # our frpc's request is the same
        bind2, remote2 = free_port(), free_port()
        frp.ours_frps(frps_oidc(bind2, idp, audience="frps"), env=env)
        wait_port(bind2, 10)
        ours = frp.ours_frpc(frpc_oidc(bind2, idp, tcp_proxy("echo2", echo_server.port, remote2), audience="frps",
                                       extra=tls))
        ours.wait_login(15)
        our_req = idp.token_requests[-1]
        assert our_req.form == go_req.form == {"grant_type": "client_credentials", "scope": "", "audience": "frps"}
        assert our_req.basic_auth() == go_req.basic_auth() == ("frpc", "s3cret")
        assert our_req.headers["content-type"] == go_req.headers["content-type"]


def test_our_frpc_to_go_frps(frp, idp: MockOIDC, echo_server) -> None:
    bind, remote = free_port(), free_port()
    frps = frp.go_frps(frps_oidc(bind, idp, audience="frps", scopes=SCOPES, extra='log.level = "debug"\n'))
    wait_port(bind, 10)
    frpc = frp.ours_frpc(frpc_oidc(bind, idp, tcp_proxy("echo", echo_server.port, remote), audience="frps",
                                   scopes=SCOPES, extra=HB))
    frpc.wait_for_proxies("echo", timeout=20)
    for _ in range(3):
        echo(remote)
    poll(lambda: frps.log_text().count("receive heartbeat") >= 2, 10, "Go frps accepting our pings")
    log = frps.log_text()
    assert "invalid" not in log and "error" not in log.lower(), log
    assert len(idp.token_requests) == 1  # ours reuses the token until shortly before it expires


def _refusal_seen_by_our_frpc(frp, idp: MockOIDC, go_server: bool, server: dict, client: dict) -> str:
    bind = free_port()
    text = frps_oidc(bind, idp, **server)
    frps = frp.go_frps(text) if go_server else frp.ours_frps(text)
    wait_port(bind, 10)
    frpc = frp.ours_frpc(frpc_oidc(bind, idp, **client).replace("loginFailExit = false", "loginFailExit = true"))
    assert frpc.wait_exit(20) == 1
    frps.kill()
    m = re.search(r"connect to server error: (.*); frps at ", frpc.log_text())
    assert m, frpc.log_text()
    return m[1]


@pytest.mark.parametrize("case", ["audience", "issuer", "expired", "null-exp"])
def test_refusal_texts_match_go_frps(frp, idp: MockOIDC, case: str) -> None:
    server, client = ({"audience": "frps"}, {"audience": "other"}) if case == "audience" else ({}, {})
    if case == "issuer":
        idp.issuer_override = "https://evil.example"
    elif case == "expired":
        idp.claims_override = {"exp": 1700000000}
    elif case == "null-exp":
        idp.claims_override = {"exp": None}
    go = _refusal_seen_by_our_frpc(frp, idp, True, server, client)
    ours = _refusal_seen_by_our_frpc(frp, idp, False, server, client)
    assert go.startswith("invalid OIDC token in login: oidc: "), go
    assert ours == go


def test_wrong_secret_reads_the_same(frp, idp: MockOIDC) -> None:
    bind = free_port()
    frp.ours_frps(frps_oidc(bind, idp))
    wait_port(bind, 10)
    texts = []
    for start in (frp.go_frpc, frp.ours_frpc):
        frpc = start(frpc_oidc(bind, idp, secret="nope"))
        m = frpc.wait_for_log(r"connect to server error: (.*)$", 15)
        texts.append(m[1].strip())
        frpc.kill()
    assert texts[0] == texts[1] == ('couldn\'t generate OIDC token for login: '
                                    'oauth2: "invalid_client" "bad client credentials"')


def test_proxy_url_like_go(frp, idp: MockOIDC) -> None:
    """auth.oidc.proxyURL: Go frpc and ours send the token request through the same proxy, alike."""
    from support.oidc import ForwardProxy

    bind = free_port()
    frp.ours_frps(frps_oidc(bind, idp))
    wait_port(bind, 10)
    with ForwardProxy() as proxy:
        for start in (frp.go_frpc, frp.ours_frpc):
            before = len(proxy.targets)
            frpc = start(frpc_oidc(bind, idp, extra=f'auth.oidc.proxyURL = "{proxy.url}"\n'))
            frpc.wait_login(15)
            frpc.kill()
            assert proxy.targets[before:][:1] == [f"POST {idp.token_url}"]
