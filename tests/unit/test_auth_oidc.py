"""aiofrp/auth/oidc.py against the local mock provider (tests/support/oidc.py), in one event loop.

The setter (frpc: client-credentials grant, caching, refresh, auth styles, TLS, proxy) and the
verifier (frps: discovery, JWKS cache and rotation, every refusal with go-oidc's text, bad
providers bounded in time). The processes, scopes on the wire and Go peers are in
tests/e2e/test_oidc.py and tests/compat/test_go_oidc.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.oidc import ForwardProxy, MockOIDC, Socks5Proxy, TestCA

from aiofrp.auth import AuthError, LoginAuth, Verifier, new_setter, new_verifier, oidc
from aiofrp.config import ClientConfig, ConfigError, ServerConfig, parse_client_config, parse_server_config
from aiofrp.proto import msg as m

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def idp() -> Iterator[MockOIDC]:
    with MockOIDC() as p:
        yield p


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


def client_cfg(idp: MockOIDC, extra: str = "", *, secret: str = "s3cret") -> ClientConfig:
    return parse_client_config(
        'auth.method = "oidc"\n'
        'auth.oidc.clientID = "frpc"\n'
        f'auth.oidc.clientSecret = "{secret}"\n'
        f'auth.oidc.tokenEndpointURL = "{idp.token_url}"\n' + extra,
        "frpc.toml",
    )


def server_cfg(idp: MockOIDC, extra: str = "") -> ServerConfig:
    return parse_server_config(f'auth.method = "oidc"\nauth.oidc.issuer = "{idp.issuer}"\n' + extra, "frps.toml")


def setter(idp: MockOIDC, extra: str = "", **kw: str):
    return new_setter(client_cfg(idp, extra, **kw).auth)


def verifier(idp: MockOIDC, extra: str = ""):
    return new_verifier(server_cfg(idp, extra).auth)


async def login_with(v: Verifier, token: str) -> LoginAuth:
    return await v.verify_login(m.Login(privilege_key=token))


def refusal(v, token: str) -> str:
    async def go() -> str:
        with pytest.raises(AuthError) as ei:
            await login_with(v, token)
        return str(ei.value)

    return asyncio.run(go())


# -- frpc: the token request ----------------------------------------------------------------------


def test_token_request_is_go_oauth2s(idp: MockOIDC) -> None:
    s = setter(idp, 'auth.oidc.audience = "api"\nauth.oidc.additionalEndpointParams.resource = "r 1"\n')
    login = m.Login()
    asyncio.run(s.set_login(login))
    (req,) = idp.token_requests
    # client credentials in HTTP Basic first; scope always present (empty); audience; extra params
    assert req.basic_auth() == ("frpc", "s3cret")
    assert req.form == {"grant_type": "client_credentials", "scope": "", "audience": "api", "resource": "r 1"}
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    claims = json.loads(base64.urlsafe_b64decode(login.privilege_key.split(".")[1] + "=="))
    assert claims["sub"] == "frpc" and claims["aud"] == "api"


def test_audience_overrides_the_endpoint_param(idp: MockOIDC) -> None:
    s = setter(idp, 'auth.oidc.audience = "a1"\nauth.oidc.additionalEndpointParams.audience = "a2"\n')
    asyncio.run(s.set_login(m.Login()))
    assert idp.token_requests[0].form["audience"] == "a1"


def test_credentials_in_the_form_when_basic_auth_fails(idp: MockOIDC, monkeypatch: pytest.MonkeyPatch) -> None:
    """oauth2's auth-style probe: Basic first, then the form; the style that worked is kept."""
    orig = idp._token

    def form_only(h, form):
        if idp.requests[-1].basic_auth() is not None:
            return idp._json(h, 401, {"error": "invalid_client"})
        return orig(h, form)

    monkeypatch.setattr(idp, "_token", form_only)
    idp.send_expires_in = False  # no caching: every call asks
    s = setter(idp)
    asyncio.run(s.set_login(m.Login()))
    asyncio.run(s.set_login(m.Login()))
    reqs = idp.token_requests
    assert [r.basic_auth() is not None for r in reqs] == [True, False, False]
    assert reqs[1].form["client_id"] == "frpc" and reqs[1].form["client_secret"] == "s3cret"


def test_token_is_cached_until_shortly_before_expiry(idp: MockOIDC) -> None:
    s = setter(idp, 'auth.additionalScopes = ["HeartBeats", "NewWorkConns"]\n')

    async def go() -> list[str]:
        keys = []
        for msg in (m.Login(), m.Ping(), m.NewWorkConn()):
            await getattr(s, {"Login": "set_login", "Ping": "set_ping", "NewWorkConn": "set_new_work_conn"}[
                type(msg).__name__])(msg)
            keys.append(msg.privilege_key)
        return keys

    keys = asyncio.run(go())
    assert len(set(keys)) == 1 and keys[0]
    assert len(idp.token_requests) == 1  # one token for all three (frp 0.68+ caching)


def test_token_is_refreshed_before_it_expires(idp: MockOIDC, monkeypatch: pytest.MonkeyPatch) -> None:
    idp.lifetime = 60
    s = setter(idp)
    now = [0.0]  # seconds added to the real clock
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + now[0])

    async def key() -> str:
        login = m.Login()
        await s.set_login(login)
        return login.privilege_key

    async def go() -> None:
        first = await key()
        now[0] += 49  # 11 s left: still reused
        assert await key() == first and len(idp.token_requests) == 1
        now[0] += 2  # 9 s left: within oauth2's 10 s expiry delta -> a new token
        await key()
        assert len(idp.token_requests) == 2

    asyncio.run(go())


def test_no_expires_in_means_a_token_per_message(idp: MockOIDC) -> None:
    idp.send_expires_in = False
    s = setter(idp)

    async def go() -> None:
        for _ in range(3):
            await s.set_login(m.Login())

    asyncio.run(go())
    assert len(idp.token_requests) == 3


def test_concurrent_messages_share_one_request(idp: MockOIDC) -> None:
    idp.mode["/token"] = "slow"
    idp.delay = 0.3
    s = setter(idp, 'auth.additionalScopes = ["NewWorkConns"]\n')

    async def go() -> None:
        msgs = [m.NewWorkConn() for _ in range(8)]
        await asyncio.gather(*(s.set_new_work_conn(x) for x in msgs))
        assert len({x.privilege_key for x in msgs}) == 1

    asyncio.run(go())
    assert len(idp.token_requests) == 1


def test_scopes_decide_what_carries_a_token(idp: MockOIDC) -> None:
    s = setter(idp)
    ping, work = m.Ping(), m.NewWorkConn()
    asyncio.run(s.set_ping(ping))
    asyncio.run(s.set_new_work_conn(work))
    assert ping.privilege_key == "" and work.privilege_key == "" and not idp.token_requests


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: None, 'oauth2: "invalid_client" "bad client credentials"'),
        (lambda p: p.mode.__setitem__("/token", "500"),
         "oauth2: cannot fetch token: 500 Internal Server Error Response: internal error"),
        (lambda p: p.mode.__setitem__("/token", "garbage"), "oauth2: cannot parse json: "),
    ],
    ids=["wrong-secret", "http-500", "garbage"],
)
def test_token_errors_read_like_go(idp: MockOIDC, setup, expected: str) -> None:
    setup(idp)
    s = setter(idp, secret="wrong" if expected.startswith('oauth2: "invalid_client"') else "s3cret")
    with pytest.raises(AuthError) as ei:
        asyncio.run(s.set_login(m.Login()))
    assert str(ei.value).startswith("couldn't generate OIDC token for login: " + expected), ei.value


def test_slow_or_absent_token_endpoint_is_bounded(idp: MockOIDC, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oidc, "TOKEN_TIMEOUT", 0.5)
    idp.mode["/token"] = "slow"
    idp.delay = 3
    s = setter(idp)
    t0 = time.monotonic()
    with pytest.raises(AuthError, match="no response within 0.5s"):
        asyncio.run(s.set_login(m.Login()))
    assert time.monotonic() - t0 < 2
    idp.mode["/token"] = "down"
    with pytest.raises(AuthError, match="couldn't generate OIDC token for login: "):
        asyncio.run(s.set_login(m.Login()))


def test_https_token_endpoint_with_trusted_ca(ca: TestCA) -> None:
    with MockOIDC(ca=ca) as p:
        with pytest.raises(AuthError, match="certificate verify failed"):  # system CAs do not know it
            asyncio.run(setter(p).set_login(m.Login()))
        login = m.Login()
        asyncio.run(setter(p, f'auth.oidc.trustedCaFile = "{ca.ca_file}"\n').set_login(login))
        assert login.privilege_key
        asyncio.run(setter(p, "auth.oidc.insecureSkipVerify = true\n").set_login(m.Login()))
        assert len(p.token_requests) == 2


def test_bad_trusted_ca_file_is_a_config_error(idp: MockOIDC, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"auth\.oidc\.trustedCaFile: failed to create OIDC HTTP client: "
                                          r"failed to read OIDC CA certificate file"):
        setter(idp, f'auth.oidc.trustedCaFile = "{tmp_path / "missing.pem"}"\n')
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="failed to parse OIDC CA certificate from file"):
        setter(idp, f'auth.oidc.trustedCaFile = "{tmp_path / "junk.pem"}"\n')


@pytest.mark.parametrize("https", [False, True], ids=["http", "https-connect"])
def test_proxy_url_carries_the_token_request(ca: TestCA, https: bool) -> None:
    with MockOIDC(ca=ca if https else None) as p, ForwardProxy() as proxy:
        extra = f'auth.oidc.proxyURL = "{proxy.url}"\n'
        if https:
            extra += f'auth.oidc.trustedCaFile = "{ca.ca_file}"\n'
        asyncio.run(setter(p, extra).set_login(m.Login()))
        want = f"CONNECT 127.0.0.1:{p.port}" if https else f"POST {p.token_url}"
        assert proxy.targets == [want]
        assert len(p.token_requests) == 1


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks5_proxy_url(ca: TestCA, scheme: str) -> None:
    with MockOIDC(ca=ca) as p, Socks5Proxy() as proxy:
        url = p.token_url.replace("127.0.0.1", "localhost")  # a host name: the proxy resolves it
        extra = (f'auth.oidc.proxyURL = "{proxy.url.replace("socks5", scheme, 1)}"\n'
                 f'auth.oidc.trustedCaFile = "{ca.ca_file}"\n')
        s = setter(p, extra)
        s.token_url = url
        asyncio.run(s.set_login(m.Login()))
        assert proxy.targets == [("localhost", p.port)] and len(p.token_requests) == 1


def test_proxy_down_is_a_clear_error(idp: MockOIDC) -> None:
    port = __import__("support.procs", fromlist=["free_port"]).free_port()
    for url in (f"http://127.0.0.1:{port}", f"socks5://127.0.0.1:{port}"):
        with pytest.raises(AuthError, match="couldn't generate OIDC token for login: POST"):
            asyncio.run(setter(idp, f'auth.oidc.proxyURL = "{url}"\n').set_login(m.Login()))
    assert not idp.token_requests


def test_token_source_is_read_each_time(tmp_path: Path, idp: MockOIDC) -> None:
    f = tmp_path / "token"
    f.write_text("tok-1\n")
    cfg = parse_client_config(
        f'auth.method = "oidc"\nauth.additionalScopes = ["HeartBeats"]\n'
        f'auth.oidc.tokenSource.type = "file"\nauth.oidc.tokenSource.file.path = "{f}"\n', "frpc.toml")
    s = new_setter(cfg.auth)
    login, ping = m.Login(), m.Ping()
    asyncio.run(s.set_login(login))
    f.write_text("tok-2")
    asyncio.run(s.set_ping(ping))
    assert (login.privilege_key, ping.privilege_key) == ("tok-1", "tok-2")
    f.unlink()
    with pytest.raises(AuthError, match="couldn't acquire OIDC token for login: auth.oidc.tokenSource.file.path"):
        asyncio.run(s.set_login(m.Login()))


# -- config -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('auth.oidc.tokenEndpointURL = "http://x/token"', "auth.oidc.clientID"),
        ('auth.oidc.clientID = "c"', "auth.oidc.tokenEndpointURL"),
        ('auth.oidc.clientID = "c"\nauth.oidc.tokenEndpointURL = "/token"', "auth.oidc.tokenEndpointURL"),
        (('auth.oidc.clientID = "c"\nauth.oidc.tokenEndpointURL = "http://x/t"\n'
         'auth.oidc.additionalEndpointParams.scope = "s"'), "auth.oidc.additionalEndpointParams.scope"),
        ('auth.oidc.clientID = "c"\nauth.oidc.tokenEndpointURL = "http://x/t"\nauth.oidc.proxyURL = "ftp://p"',
         "auth.oidc.proxyURL"),
    ],
)
def test_client_config_refusals(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_client_config('auth.method = "oidc"\n' + text, "frpc.toml")
    assert ei.value.path == path


def test_server_needs_an_issuer() -> None:
    with pytest.raises(ConfigError, match=r"frps.toml: auth\.oidc\.issuer: must be set"):
        parse_server_config('auth.method = "oidc"\n', "frps.toml")


# -- frps: verification -----------------------------------------------------------------------------


def test_valid_token_and_cached_keys(idp: MockOIDC) -> None:
    v = verifier(idp, 'auth.oidc.audience = "frpc"\n')

    async def go() -> None:
        await v.start()
        for _ in range(3):
            await login_with(v, idp.mint())

    asyncio.run(go())
    assert len(idp.discovery_requests) == 1 and len(idp.jwks_requests) == 1


@pytest.mark.parametrize(
    ("claims", "extra", "expected"),
    [
        ({"aud": "other"}, 'auth.oidc.audience = "frpc"\n', 'oidc: expected audience "frpc" got ["other"]'),
        ({"aud": ["a", "b"]}, 'auth.oidc.audience = "frpc"\n', 'oidc: expected audience "frpc" got ["a" "b"]'),
        ({"iss": "https://evil.example"}, "",
         'oidc: id token issued by a different provider, expected "{issuer}" got "https://evil.example"'),
        ({"exp": 1700000000}, "", "oidc: token is expired (Token Expiry: "),
        ({"exp": None}, "", "oidc: token is expired (Token Expiry: 0001-01-01 00:00:00 +0000 UTC)"),
        ({"nbf": int(time.time()) + 3600}, "", "oidc: current time "),
    ],
    ids=["audience", "audience-list", "issuer", "expired", "no-exp", "not-before"],
)
def test_claim_refusals(idp: MockOIDC, claims: dict, extra: str, expected: str) -> None:
    v = verifier(idp, extra)
    token = _drop_claim(idp, "exp") if claims == {"exp": None} else idp.mint(**claims)
    err = refusal(v, token)
    assert err.startswith("invalid OIDC token in login: " + expected.format(issuer=idp.issuer)), err
    assert not idp.jwks_requests  # claims are checked before any key is fetched (go-oidc's order)


def _drop_claim(idp: MockOIDC, name: str) -> str:
    import jwt

    now = int(time.time())
    body = {"iss": idp.issuer, "sub": "frpc", "aud": "frpc", "iat": now, "exp": now + 60}
    body.pop(name)
    return jwt.encode(body, idp.signing.private, algorithm="RS256", headers={"kid": idp.signing.kid})


def test_skip_checks(idp: MockOIDC) -> None:
    v = verifier(idp, "auth.oidc.skipExpiryCheck = true\nauth.oidc.skipIssuerCheck = true\n")
    asyncio.run(login_with(v, idp.mint(exp=1700000000, iss="https://elsewhere")))


def test_signature_refusals(idp: MockOIDC) -> None:
    v = verifier(idp)
    forged = idp.mint()[:-8] + ("A" * 8 if not idp.mint().endswith("A" * 8) else "B" * 8)
    assert refusal(v, forged) == ("invalid OIDC token in login: failed to verify signature: "
                                  "failed to verify id token signature")
    assert refusal(v, "not-a-jwt") == ("invalid OIDC token in login: oidc: malformed jwt: "
                                       "oidc: malformed jwt, expected 3 parts got 1")
    hs = __import__("jwt").encode({"iss": idp.issuer, "sub": "x", "exp": int(time.time()) + 60}, "k" * 32,
                                  algorithm="HS256")
    assert 'unexpected signature algorithm "HS256"; expected ["RS256"]' in refusal(v, hs)


def test_key_rotation_and_unknown_kid(idp: MockOIDC, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oidc, "JWKS_REFETCH_INTERVAL", 0.2)
    v = verifier(idp)

    async def go() -> None:
        await login_with(v, idp.mint())
        assert len(idp.jwks_requests) == 1
        idp.rotate()  # k2 signs, k1 leaves the JWKS
        await login_with(v, idp.mint())  # unknown kid -> one refetch -> accepted
        assert len(idp.jwks_requests) == 2
        await login_with(v, idp.mint())
        assert len(idp.jwks_requests) == 2  # cached again
        # a key the JWKS never lists: refused after one (rate-limited) refetch
        from support.oidc import _Key

        idp.unpublished = _Key("rogue")
        with pytest.raises(AuthError, match="failed to verify signature: failed to verify id token signature"):
            await login_with(v, idp.mint())
        assert len(idp.jwks_requests) == 3
        # many at once share one request
        await asyncio.gather(*(_refused(v, idp.mint()) for _ in range(5)))
        assert len(idp.jwks_requests) == 4

    asyncio.run(go())


async def _refused(v, token: str) -> None:
    with pytest.raises(AuthError):
        await login_with(v, token)


def test_jwks_refetch_is_rate_limited(idp: MockOIDC, monkeypatch: pytest.MonkeyPatch) -> None:
    """An attacker sending tokens with made-up kids cannot make frps hammer the provider."""
    from support.oidc import _Key

    monkeypatch.setattr(oidc, "JWKS_REFETCH_INTERVAL", 0.5)
    v = verifier(idp)

    async def go() -> float:
        await login_with(v, idp.mint())
        idp.unpublished = _Key("x")
        t0 = time.monotonic()
        for _ in range(3):
            await _refused(v, idp.mint())
        return time.monotonic() - t0

    took = asyncio.run(go())
    # the first refetch is at once, each next one waits for its slot
    assert len(idp.jwks_requests) == 4
    assert took >= 2 * oidc.JWKS_REFETCH_INTERVAL - 0.1


def test_a_login_during_a_refetch_uses_its_keys(idp: MockOIDC, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token with the new kid that arrives while the refetch for another one is under way (the
    old keys still cached) waits for that refetch and is accepted with its keys: one request, not a
    second one a rate-limit interval later."""
    monkeypatch.setattr(oidc, "JWKS_REFETCH_INTERVAL", 0.2)
    v = verifier(idp)

    async def go() -> None:
        await login_with(v, idp.mint())
        idp.rotate()
        idp.mode["/jwks"], idp.delay = "slow", 0.5  # the JWKS answer takes a while
        first = asyncio.create_task(login_with(v, idp.mint()))
        while len(idp.jwks_requests) < 2:  # the refetch has reached the provider
            await asyncio.sleep(0.01)
        await login_with(v, idp.mint())
        await first

    asyncio.run(go())
    assert len(idp.jwks_requests) == 2


def test_subject_must_stay_the_same(idp: MockOIDC) -> None:
    v = verifier(idp, 'auth.additionalScopes = ["HeartBeats", "NewWorkConns"]\n')

    async def go() -> None:
        auth = await login_with(v, idp.mint(sub="alice"))
        await auth.verify_ping(m.Ping(privilege_key=idp.mint(sub="alice")))
        await auth.verify_new_work_conn(m.NewWorkConn(privilege_key=idp.mint(sub="alice")))
        await login_with(v, idp.mint(sub="bob"))  # another client
        with pytest.raises(AuthError) as ei:
            await auth.verify_ping(m.Ping(privilege_key=idp.mint(sub="bob")))
        assert str(ei.value) == ("received different OIDC subject in login and ping. "
                                 "original subjects: [alice], new subject: bob")
        with pytest.raises(AuthError, match="^invalid OIDC token in ping: oidc: token is expired"):
            await auth.verify_new_work_conn(m.NewWorkConn(privilege_key=idp.mint(sub="alice", exp=1700000000)))
        with pytest.raises(AuthError, match="^invalid OIDC token in ping: oidc: malformed jwt"):
            await auth.verify_ping(m.Ping())

    asyncio.run(go())


def test_scopes_off_means_no_post_login_check(idp: MockOIDC) -> None:
    v = verifier(idp)

    async def go() -> None:
        auth = await login_with(v, idp.mint())
        await auth.verify_ping(m.Ping())
        await auth.verify_new_work_conn(m.NewWorkConn())

    asyncio.run(go())


# -- frps: bad providers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "mode", "expected"),
    [
        ("/.well-known/openid-configuration", "500", "500 Internal Server Error: internal error"),
        ("/.well-known/openid-configuration", "garbage", "oidc: failed to decode provider discovery object: "),
        ("/.well-known/openid-configuration", "down", 'GET "'),
        ("/jwks", "500", "failed to verify signature: fetching keys oidc: get keys failed: 500 Internal"),
        ("/jwks", "garbage", "failed to verify signature: fetching keys oidc: failed to decode keys: "),
        ("/jwks", "down", "failed to verify signature: fetching keys oidc: get keys failed GET"),
    ],
)
def test_bad_provider(idp: MockOIDC, path: str, mode: str, expected: str) -> None:
    idp.mode[path] = mode
    v = verifier(idp)
    err = refusal(v, idp.mint())
    assert err.startswith("invalid OIDC token in login: " + expected), err


def test_discovery_issuer_mismatch(idp: MockOIDC) -> None:
    idp.discovery_issuer = "https://other.example"
    err = refusal(verifier(idp), idp.mint())
    assert err == ('invalid OIDC token in login: oidc: issuer did not match the issuer returned by provider, '
                   f'expected "{idp.issuer}" got "https://other.example"')


def test_slow_provider_is_bounded(idp: MockOIDC, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oidc, "PROVIDER_TIMEOUT", 0.5)
    idp.mode["/jwks"] = "slow"
    idp.delay = 3
    v = verifier(idp)
    t0 = time.monotonic()
    err = refusal(v, idp.mint())
    assert "no response within 0.5s" in err and time.monotonic() - t0 < 2


def test_provider_down_at_start_then_back(idp: MockOIDC, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(oidc, "DISCOVERY_RETRY_INTERVAL", 60.0)  # no retry while the provider is down
    idp.mode["/.well-known/openid-configuration"] = "500"
    v = verifier(idp)

    async def go() -> None:
        await v.start()
        assert "logins are refused until it answers" in caplog.text
        await _refused(v, idp.mint())
        await _refused(v, idp.mint())  # within the retry interval: no new request
        assert len(idp.discovery_requests) == 1
        idp.mode.clear()
        monkeypatch.setattr(oidc, "DISCOVERY_RETRY_INTERVAL", 0.0)  # the interval is over
        await login_with(v, idp.mint())
        assert len(idp.discovery_requests) == 2

    asyncio.run(go())


def test_jwks_without_the_kid(idp: MockOIDC) -> None:
    v = verifier(idp)
    idp.keys = []  # the provider publishes no keys at all
    assert refusal(v, idp.mint()).endswith("failed to verify signature: failed to verify id token signature")


def test_https_provider_uses_the_system_cas(ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> None:
    """frps trusts the system's CAs; SSL_CERT_FILE adds a private CA as it does for Go."""
    with MockOIDC(ca=ca) as p:
        assert "certificate verify failed" in refusal(verifier(p), p.mint())
        monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_file))
        asyncio.run(login_with(verifier(p), p.mint()))


def test_auth_token_source_is_not_read_with_oidc(tmp_path: Path, idp: MockOIDC) -> None:
    """As Go: auth.tokenSource is resolved for the token method only, so with OIDC the control
    connection's key stays auth.token (empty) on both sides."""
    f = tmp_path / "token"
    f.write_text("shared")
    src = f'auth.tokenSource.type = "file"\nauth.tokenSource.file.path = "{f}"\n'
    c = client_cfg(idp, src)
    s = parse_server_config(f'auth.method = "oidc"\nauth.oidc.issuer = "{idp.issuer}"\n' + src, "frps.toml")
    assert c.auth.token == s.auth.token == ""
    assert parse_server_config(src, "frps.toml").auth.token == "shared"
