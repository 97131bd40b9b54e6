"""``auth.method = "oidc"`` (§3.3): frpc sends an OAuth2 access token, frps verifies it as a JWT.

frpc (:class:`OIDCSetter`, Go ``OidcAuthProvider`` with golang.org/x/oauth2's client-credentials
grant): POST ``tokenEndpointURL`` with ``grant_type=client_credentials``, ``scope`` (always sent,
empty when unset), ``audience`` and ``additionalEndpointParams``; the client id and secret go in
HTTP Basic auth first and, if that request fails, in the form (the style that worked is kept, as
oauth2's auth-style cache does). The access token goes in ``privilege_key`` of Login, and of Ping
/ NewWorkConn with the ``HeartBeats`` / ``NewWorkConns`` scopes.

Token reuse: Go frpc 0.65 fetches a new token for every Login, Ping and work connection; frp 0.68+
reuses a token until 10 s before its ``expires_in`` (a token without ``expires_in`` is fetched
anew each time). Both look the same on the wire to frps; we do what 0.68+ does, and the token is
fetched *before* the connection to frps is opened (Go fetches after connecting, so a slow provider
eats frps's 10 s first-message deadline).

``auth.oidc.tokenSource`` (frp 0.66+, :class:`TokenSourceSetter`): the token is read from a file
or a command each time one is needed, as Go does (the file may be rotated by another program).

frps (:class:`OIDCVerifier`, Go ``OidcAuthConsumer`` over coreos/go-oidc): the issuer's discovery
document gives ``jwks_uri`` and the signing algorithms; a token is checked in go-oidc's order and
with its messages: issuer (unless ``skipIssuerCheck``), audience (when ``auth.oidc.audience`` is
set), expiry and not-before (unless ``skipExpiryCheck``), then the signature against the JWKS.
The keys are cached; a token whose ``kid`` is not among them makes frps fetch the JWKS again
(key rotation), at most once per :data:`JWKS_REFETCH_INTERVAL`, concurrent logins sharing one
request. Pings and work connections must carry the subject (``sub``) their control logged in with.

Difference from Go frpc, on purpose: when ``auth.oidc.proxyURL`` is not set, the token request
goes through frpc's ``transport.proxyURL`` (when that is set in the config); Go's goes direct or
through the environment's proxies.

Differences from Go frps 0.65, on purpose:

* an unreachable issuer at start-up is logged and retried at the next login (Go panics and exits
  with status 2); until it answers, logins are refused with the reason;
* every request to the provider is bounded by :data:`PROVIDER_TIMEOUT` (Go has no timeout);
* a Ping or work connection must carry its own control's login subject (Go accepts any subject
  that some client logged in with since frps started);
* the JWKS is also refreshed when older than :data:`JWKS_MAX_AGE` (Go keeps keys until a token
  fails), so a key the provider dropped stops working.

PyJWT (with ``cryptography``, already a dependency) verifies the signatures: it is maintained,
small, pure Python over the same OpenSSL bindings, and lets the claim checks be done here in
go-oidc's order with go-oidc's messages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config.validate import proxy_url_problem
from . import HEARTBEATS, NEW_WORK_CONNS, AuthError
from .http import HTTPError, Response, client_context, env_proxy, request

if TYPE_CHECKING:
    from ..config.base import ValueSource
    from ..config.client import AuthOIDCClientConfig
    from ..config.server import AuthOIDCServerConfig
    from ..proto import msg as m

log = logging.getLogger("aiofrp.auth")

TOKEN_TIMEOUT = 10.0
"""Seconds one token request may take (both auth styles together)."""
EXPIRY_DELTA = 10.0
"""A cached token is replaced this many seconds before it expires (oauth2's ``defaultExpiryDelta``)."""
PROVIDER_TIMEOUT = 5.0
"""Seconds one discovery or JWKS request may take on frps (frpc waits 10 s for its LoginResp)."""
DISCOVERY_RETRY_INTERVAL = 5.0
"""After a failed discovery, logins in the next seconds are refused with that error without a new request."""
JWKS_REFETCH_INTERVAL = 2.0
"""At most one JWKS request per this many seconds; a token with a new ``kid`` waits for the next one."""
JWKS_MAX_AGE = 3600.0
"""A cached JWKS older than this is fetched again before use (kept if the provider is unreachable)."""
NBF_LEEWAY = 300.0  # go-oidc's clock-skew leeway for "nbf"
SUPPORTED_ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA")


def go_quote(s: str) -> str:
    """Go's ``%q`` of a string (close enough for log and error texts)."""
    return json.dumps(s, ensure_ascii=False)


def go_quote_list(items: list[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(s) for s in items) + "]"


def go_time(ts: float) -> str:
    """Go's ``time.Time.String()`` in the local zone: ``2026-01-02 15:04:05 +0000 UTC``."""
    if ts == 0:
        return "0001-01-01 00:00:00 +0000 UTC"
    t = datetime.datetime.fromtimestamp(ts).astimezone()
    frac = f"{ts % 1:.9f}"[1:].rstrip("0").rstrip(".") if ts % 1 else ""
    return t.strftime("%Y-%m-%d %H:%M:%S") + frac + t.strftime(" %z %Z")


# ================================================================================================
# frpc
# ================================================================================================


def _config_error(source: str, key: str, reason: str) -> Exception:
    from ..config.errors import ConfigError

    return ConfigError(source, f"auth.oidc.{key}", reason)


class _ScopedSetter:
    """Puts ``access_token()`` into Login, and into Ping/NewWorkConn with their scopes."""

    scopes: frozenset[str]

    async def access_token(self) -> str:
        raise NotImplementedError

    async def set_login(self, login: m.Login) -> None:
        login.privilege_key = await self.access_token()

    async def set_ping(self, ping: m.Ping) -> None:
        if HEARTBEATS in self.scopes:
            ping.privilege_key = await self.access_token()

    async def set_new_work_conn(self, msg: m.NewWorkConn) -> None:
        if NEW_WORK_CONNS in self.scopes:
            msg.privilege_key = await self.access_token()


class OIDCSetter(_ScopedSetter):
    """frpc: the client-credentials grant, with the token cached until shortly before it expires."""

    def __init__(self, scopes: frozenset[str], cfg: AuthOIDCClientConfig, source: str = "frpc config", *,
                 transport_proxy_url: str = "") -> None:
        self.scopes = scopes
        self.client_id = cfg.client_id
        self.client_secret = cfg.client_secret
        self.token_url = cfg.token_endpoint_url
        try:
            self.ssl_ctx = client_context(cfg.trusted_ca_file, cfg.insecure_skip_verify)
        except ValueError as e:
            raise _config_error(source, "trustedCaFile", f"failed to create OIDC HTTP client: {e}") from None
        if cfg.proxy_url:
            problem = proxy_url_problem(cfg.proxy_url)
            if problem:
                raise _config_error(source, "proxyURL", f"failed to create OIDC HTTP client: {problem}")
        # auth.oidc.proxyURL, else frpc's transport.proxyURL (beyond Go, whose token request ignores
        # transport.proxyURL and goes direct: a frpc that must use a proxy to reach frps is not let
        # reach its identity provider around it)
        self.proxy_url = cfg.proxy_url or transport_proxy_url
        if self.proxy_url and not cfg.proxy_url:
            log.info("OIDC token requests go through transport.proxyURL (auth.oidc.proxyURL is not set)")
        # Go uses its default client (environment proxies) unless one of these three is set
        self.use_env_proxy = not (cfg.trusted_ca_file or cfg.insecure_skip_verify or self.proxy_url)
        params = {"grant_type": "client_credentials", "scope": cfg.scope}
        for k, v in cfg.additional_endpoint_params.items():
            if k in params and k != "grant_type":
                raise _config_error(
                    source, f"additionalEndpointParams.{k}", f"oauth2: cannot overwrite parameter {go_quote(k)}"
                )
            params[k] = v
        if cfg.audience:
            params["audience"] = cfg.audience
        self.form = urllib.parse.urlencode(sorted(params.items()))  # Go's url.Values.Encode: sorted keys
        self._style = ""  # "header" or "params" once one worked (oauth2's auth-style cache)
        self._token = ""
        self._expires = 0.0  # time.monotonic() deadline; 0: do not reuse
        self._lock: asyncio.Lock | None = None
        self.fetches = 0  # token requests made (for tests and debugging)

    async def access_token(self) -> str:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one request at a time; the others reuse its token
            if self._token and time.monotonic() < self._expires - EXPIRY_DELTA:
                return self._token
            try:
                token, expires_in = await asyncio.wait_for(self._fetch(), TOKEN_TIMEOUT)
            except TimeoutError:
                raise AuthError(
                    f"couldn't generate OIDC token for login: Post {go_quote(self.token_url)}: "
                    f"no response within {TOKEN_TIMEOUT:g}s"
                ) from None
            except AuthError as e:
                raise AuthError(f"couldn't generate OIDC token for login: {e}") from None
            except Exception as e:  # (a library's surprise must not end frpc)
                log.debug("OIDC token request failed", exc_info=True)
                raise AuthError(f"couldn't generate OIDC token for login: {type(e).__name__}: {e}") from None
            self._token = token
            self._expires = time.monotonic() + expires_in if expires_in > 0 else 0.0
            log.debug("got an OIDC access token (expires in %ss)", expires_in or "?")
            return token

    async def _fetch(self) -> tuple[str, int]:
        styles = [self._style] if self._style else ["header", "params"]
        err: AuthError | None = None
        for style in styles:
            try:
                result = await self._request(style)
            except AuthError as e:
                err = e
                continue
            self._style = style
            return result
        assert err is not None
        raise err

    async def _request(self, style: str) -> tuple[str, int]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        form = self.form
        if style == "header":
            user = urllib.parse.quote_plus(self.client_id)
            password = urllib.parse.quote_plus(self.client_secret)
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        else:
            extra = {k: v for k, v in (("client_id", self.client_id), ("client_secret", self.client_secret)) if v}
            params = dict(urllib.parse.parse_qsl(form, keep_blank_values=True))
            params.update(extra)
            form = urllib.parse.urlencode(sorted(params.items()))
        proxy = self.proxy_url or (env_proxy(self.token_url) if self.use_env_proxy else "")
        self.fetches += 1
        try:
            resp = await request(
                "POST", self.token_url, ssl_ctx=self.ssl_ctx, proxy=proxy, timeout=TOKEN_TIMEOUT,
                data=form, headers=headers,
            )
        except HTTPError as e:
            raise AuthError(str(e)) from None
        return parse_token_response(resp)


def parse_token_response(resp: Response) -> tuple[str, int]:
    """(access token, expires_in seconds or 0) from a token endpoint's answer; ``AuthError`` with
    golang.org/x/oauth2's text otherwise."""
    failed = not 200 <= resp.status <= 299
    text = resp.body.decode("utf-8", errors="replace")
    fields: dict[str, Any]
    ctype = resp.content_type.split(";", 1)[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "text/plain"):
        fields = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    else:
        try:
            fields = json.loads(text)
            if not isinstance(fields, dict):
                raise TypeError(f"cannot unmarshal {type(fields).__name__} into a token response")
        except (ValueError, TypeError) as e:
            if failed:
                raise AuthError(_cannot_fetch(resp, text)) from None
            raise AuthError(f"oauth2: cannot parse json: {e}") from None
    code = fields.get("error")
    if code:
        msg = f"oauth2: {go_quote(str(code))}"
        for k in ("error_description", "error_uri"):
            if fields.get(k):
                msg += f" {go_quote(str(fields[k]))}"
        raise AuthError(msg)
    if failed:
        raise AuthError(_cannot_fetch(resp, text))
    token = fields.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthError("oauth2: server response missing access_token")
    return token, _expires_in(fields.get("expires_in"))


def _cannot_fetch(resp: Response, text: str) -> str:
    body = " ".join(text.split())
    if len(body) > 300:
        body = body[:300] + "..."
    return f"oauth2: cannot fetch token: {resp.status_text} Response: {body}"


def _expires_in(value: Any) -> int:
    """oauth2's ``expirationTime``: a number or a numeric string, capped at int32; else 0."""
    try:
        n = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else 0
    except ValueError:
        return 0
    return max(0, min(n, 2**31 - 1))


class TokenSourceSetter(_ScopedSetter):
    """frpc: ``auth.oidc.tokenSource``, read anew for every message that needs it (frp 0.66+)."""

    def __init__(self, scopes: frozenset[str], source_cfg: ValueSource, source: str = "frpc config") -> None:
        self.scopes = scopes
        self.value_source = source_cfg
        self.source = source

    async def access_token(self) -> str:
        from ..config.errors import ConfigError
        from ..config.token_source import TOKEN_SOURCE_EXEC, resolve_value_source

        def resolve() -> str:  # the loader already refused exec without --allow-unsafe
            return resolve_value_source(
                self.value_source, "auth.oidc.tokenSource", self.source,
                allow_unsafe=frozenset({TOKEN_SOURCE_EXEC}),
            )

        try:
            if self.value_source.type == "exec":
                return await asyncio.to_thread(resolve)
            return resolve()
        except ConfigError as e:
            raise AuthError(f"couldn't acquire OIDC token for login: {e.path}: {e.reason}") from None


# ================================================================================================
# frps
# ================================================================================================


class _Provider:
    """What the discovery document says."""

    def __init__(self, issuer: str, jwks_uri: str, algorithms: list[str]) -> None:
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self.algorithms = algorithms or ["RS256"]


class _Token:
    """A parsed (not yet verified) JWT."""

    def __init__(self, raw: str, header: dict[str, Any], claims: dict[str, Any]) -> None:
        self.raw = raw
        self.header = header
        self.claims = claims

    @property
    def subject(self) -> str:
        sub = self.claims.get("sub", "")
        return sub if isinstance(sub, str) else ""


class OIDCVerifier:
    """frps: verifies access tokens as JWTs signed by the issuer's keys."""

    def __init__(
        self, scopes: frozenset[str], cfg: AuthOIDCServerConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.scopes = scopes
        self.issuer = cfg.issuer
        self.audience = cfg.audience
        self.skip_expiry_check = cfg.skip_expiry_check
        self.skip_issuer_check = cfg.skip_issuer_check
        self.clock = clock
        self._ssl_ctx: Any = None
        self._provider: _Provider | None = None
        self._discovery_error = ""
        self._discovery_at = -1e18
        self._discovery_lock: asyncio.Lock | None = None
        self._keys: list[dict[str, Any]] = []
        self._keys_at = -1e18  # monotonic time of the last successful JWKS fetch
        self._jwks_tried_at = -1e18  # monotonic time of the last JWKS request
        self._jwks_done = 0  # JWKS requests finished (answered or failed)
        self._jwks_error = ""
        self._jwks_lock: asyncio.Lock | None = None
        self.discovery_fetches = 0
        self.jwks_fetches = 0

    # -- frps lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            p = await self.provider()
        except AuthError as e:
            log.error("oidc: cannot use issuer %s: %s; logins are refused until it answers", go_quote(self.issuer), e)
            return
        log.info("oidc: issuer %s, keys at %s", go_quote(p.issuer), p.jwks_uri)

    # -- discovery ---------------------------------------------------------------------------------

    async def _get(self, url: str) -> Response:
        if self._ssl_ctx is None:
            self._ssl_ctx = client_context()
        return await request("GET", url, ssl_ctx=self._ssl_ctx, proxy=env_proxy(url), timeout=PROVIDER_TIMEOUT)

    async def provider(self) -> _Provider:
        if self._provider is not None:
            return self._provider
        if self._discovery_lock is None:
            self._discovery_lock = asyncio.Lock()
        async with self._discovery_lock:
            if self._provider is not None:
                return self._provider
            if time.monotonic() - self._discovery_at < DISCOVERY_RETRY_INTERVAL and self._discovery_error:
                raise AuthError(self._discovery_error)
            self._discovery_at = time.monotonic()
            try:
                self._provider = await self._discover()
            except AuthError as e:
                self._discovery_error = str(e)
                raise
            self._discovery_error = ""
            return self._provider

    async def _discover(self) -> _Provider:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.discovery_fetches += 1
        try:
            resp = await self._get(url)
        except HTTPError as e:
            raise AuthError(str(e)) from None
        if resp.status != 200:
            raise AuthError(f"{resp.status_text}: {_short(resp.body)}")
        try:
            doc = json.loads(resp.body)
            if not isinstance(doc, dict):
                raise TypeError("not a JSON object")
        except (ValueError, TypeError) as e:
            raise AuthError(f"oidc: failed to decode provider discovery object: {e}") from None
        issuer = doc.get("issuer")
        if issuer != self.issuer:
            raise AuthError(
                "oidc: issuer did not match the issuer returned by provider, "
                f"expected {go_quote(self.issuer)} got {go_quote(str(issuer or ''))}"
            )
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise AuthError("oidc: the provider's discovery document has no jwks_uri")
        algs = doc.get("id_token_signing_alg_values_supported") or []
        algs = [a for a in algs if isinstance(a, str) and a in SUPPORTED_ALGS] if isinstance(algs, list) else []
        return _Provider(issuer, jwks_uri, algs)

    # -- keys -------------------------------------------------------------------------------------

    async def _refresh_keys(self, jwks_uri: str, *, reason: str) -> None:
        """Fetch the JWKS again, at most once per JWKS_REFETCH_INTERVAL (waiting for the slot)."""
        if self._jwks_lock is None:
            self._jwks_lock = asyncio.Lock()
        # the caller has just looked at the keys of the fetches done so far: one that ends after
        # this (started before or while we wait for the lock) has newer keys, so use its result.
        # (A start time would miss a fetch already under way: its keys were not there yet.)
        seen = self._jwks_done
        async with self._jwks_lock:
            if self._jwks_done > seen:
                if self._jwks_error:
                    raise AuthError(self._jwks_error)
                return
            wait = self._jwks_tried_at + JWKS_REFETCH_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._jwks_tried_at = time.monotonic()
            self.jwks_fetches += 1
            log.debug("oidc: fetching keys from %s (%s)", jwks_uri, reason)
            try:
                self._keys = await self._fetch_keys(jwks_uri)
            except AuthError as e:
                self._jwks_error = str(e)
                raise
            finally:
                self._jwks_done += 1
            self._jwks_error = ""
            self._keys_at = time.monotonic()

    async def _fetch_keys(self, jwks_uri: str) -> list[dict[str, Any]]:
        try:
            resp = await self._get(jwks_uri)
        except HTTPError as e:
            raise AuthError(f"fetching keys oidc: get keys failed {e}") from None
        if resp.status != 200:
            raise AuthError(f"fetching keys oidc: get keys failed: {resp.status_text} {_short(resp.body)}")
        try:
            doc = json.loads(resp.body)
            keys = doc.get("keys") if isinstance(doc, dict) else None
            if not isinstance(keys, list):
                raise TypeError('no "keys" array')
        except (ValueError, TypeError) as e:
            raise AuthError(f"fetching keys oidc: failed to decode keys: {e} {_short(resp.body)}") from None
        return [k for k in keys if isinstance(k, dict)]

    # -- verification -----------------------------------------------------------------------------

    async def verify(self, raw: str) -> _Token:
        """go-oidc's ``IDTokenVerifier.Verify``: ``AuthError`` with its text, or the token."""
        tok = _parse(raw)
        provider = await self.provider()
        c = tok.claims
        if not self.skip_issuer_check and c.get("iss", "") != provider.issuer:
            raise AuthError(
                "oidc: id token issued by a different provider, "
                f"expected {go_quote(provider.issuer)} got {go_quote(str(c.get('iss', '')))}"
            )
        if self.audience:
            aud = c.get("aud", [])
            auds = [aud] if isinstance(aud, str) else list(aud)
            if self.audience not in auds:
                raise AuthError(f"oidc: expected audience {go_quote(self.audience)} got {go_quote_list(auds)}")
        if not self.skip_expiry_check:
            now = self.clock()
            exp = float(c.get("exp", 0) or 0)
            if exp < now:
                raise AuthError(f"oidc: token is expired (Token Expiry: {go_time(int(exp) if exp else 0)})")
            nbf = c.get("nbf")
            if nbf is not None and now + NBF_LEEWAY < float(nbf):
                raise AuthError(
                    f"oidc: current time {go_time(now)} before the nbf (not before) time: {go_time(float(nbf))}"
                )
        alg = tok.header.get("alg")
        if alg not in provider.algorithms:
            raise AuthError(
                f"oidc: malformed jwt: go-jose/go-jose: unexpected signature algorithm {go_quote(str(alg))}; "
                f"expected {go_quote_list(provider.algorithms)}"
            )
        await self._verify_signature(tok, provider)
        return tok

    async def _verify_signature(self, tok: _Token, provider: _Provider) -> None:
        kid = tok.header.get("kid", "")
        kid = kid if isinstance(kid, str) else ""
        if self._keys and time.monotonic() - self._keys_at > JWKS_MAX_AGE:
            try:
                await self._refresh_keys(provider.jwks_uri, reason="the cached keys are old")
            except AuthError as e:
                log.warning("oidc: keeping the cached keys: %s", e)
        if _verify_with(tok, self._keys, kid):
            return
        reason = f"no cached key with kid {go_quote(kid)}" if kid else "no cached key verifies the token"
        try:
            await self._refresh_keys(provider.jwks_uri, reason=reason)
        except AuthError as e:
            raise AuthError(f"failed to verify signature: {e}") from None
        if not _verify_with(tok, self._keys, kid):
            raise AuthError("failed to verify signature: failed to verify id token signature")

    # -- the auth.Verifier interface --------------------------------------------------------------

    async def checked(self, raw: str, what: str) -> _Token:
        """:meth:`verify`, every failure an ``AuthError`` ``invalid OIDC token in WHAT: ...``."""
        try:
            return await self.verify(raw)
        except AuthError as e:
            raise AuthError(f"invalid OIDC token in {what}: {e}") from None
        except RecursionError:
            raise AuthError(f"invalid OIDC token in {what}: oidc: malformed jwt: nested too deeply") from None
        except Exception as e:  # (a library's surprise refuses this token only)
            log.debug("OIDC token check failed", exc_info=True)
            raise AuthError(f"invalid OIDC token in {what}: {type(e).__name__}: {e}") from None

    async def verify_login(self, login: m.Login) -> _OIDCLogin:
        tok = await self.checked(login.privilege_key, "login")
        return _OIDCLogin(self, tok.subject)


class _OIDCLogin:
    """One accepted login: its subject, which later tokens of that control must carry."""

    def __init__(self, verifier: OIDCVerifier, subject: str) -> None:
        self.verifier = verifier
        self.subject = subject

    async def _verify_post_login(self, raw: str) -> None:
        tok = await self.verifier.checked(raw, "ping")
        if tok.subject != self.subject:
            raise AuthError(
                "received different OIDC subject in login and ping. "
                f"original subjects: [{self.subject}], new subject: {tok.subject}"
            )

    async def verify_ping(self, ping: m.Ping) -> None:
        if HEARTBEATS in self.verifier.scopes:
            await self._verify_post_login(ping.privilege_key)

    @property
    def checks_work_conns(self) -> bool:
        return NEW_WORK_CONNS in self.verifier.scopes

    async def verify_new_work_conn(self, msg: m.NewWorkConn) -> None:
        if NEW_WORK_CONNS in self.verifier.scopes:
            await self._verify_post_login(msg.privilege_key)


def _short(body: bytes, limit: int = 200) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[:limit] + "..."


def _b64(part: str) -> bytes:
    """Go's ``base64.RawURLEncoding`` (no padding, strict alphabet)."""
    if "=" in part:
        raise ValueError("illegal base64 data (padding)")
    try:
        return base64.b64decode(part + "=" * (-len(part) % 4), altchars=b"-_", validate=True)
    except binascii.Error as e:
        raise ValueError(f"illegal base64 data: {e}") from None


def _parse(raw: str) -> _Token:
    parts = raw.split(".")
    if len(parts) < 2:
        raise AuthError(f"oidc: malformed jwt: oidc: malformed jwt, expected 3 parts got {len(parts)}")
    try:
        payload = _b64(parts[1])
    except ValueError as e:
        raise AuthError(f"oidc: malformed jwt: oidc: malformed jwt payload: {e}") from None
    try:
        claims = json.loads(payload)
        if not isinstance(claims, dict):
            raise TypeError(f"cannot unmarshal {type(claims).__name__} into the claims object")
        _check_claim_types(claims)
    except (ValueError, TypeError) as e:
        raise AuthError(f"oidc: failed to unmarshal claims: {e}") from None
    if len(parts) != 3:
        raise AuthError("oidc: malformed jwt: go-jose/go-jose: compact JWS format must have three parts")
    try:
        header = json.loads(_b64(parts[0]))
        if not isinstance(header, dict):
            raise TypeError("the protected header is not an object")
    except (ValueError, TypeError) as e:
        raise AuthError(f"oidc: malformed jwt: go-jose/go-jose: {e}") from None
    return _Token(raw, header, claims)


def _check_claim_types(c: dict[str, Any]) -> None:
    for k in ("iss", "sub", "nonce", "at_hash"):
        if k in c and c[k] is not None and not isinstance(c[k], str):
            raise TypeError(
                f"json: cannot unmarshal {type(c[k]).__name__} into Go struct field idToken.{k} of type string"
            )
    aud = c.get("aud")
    if aud is not None and not isinstance(aud, str) and not (
        isinstance(aud, list) and all(isinstance(a, str) for a in aud)
    ):
        raise TypeError("json: cannot unmarshal aud: expected a string or an array of strings")
    for k in ("exp", "iat", "nbf"):
        v = c.get(k)
        if k in c and v is None:  # go-oidc's jsonTime reads null as the number ""
            raise ValueError('strconv.ParseFloat: parsing "": invalid syntax')
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise TypeError(
                f"json: cannot unmarshal {type(v).__name__} into Go struct field idToken.{k} of type number"
            )


def _verify_with(tok: _Token, keys: list[dict[str, Any]], kid: str) -> bool:
    """True if one of ``keys`` (with that ``kid``, or any when the token has none) signed ``tok``."""
    import jwt
    from jwt.exceptions import PyJWTError

    alg_name = tok.header["alg"]
    try:
        alg = jwt.get_algorithm_by_name(alg_name)
    except (NotImplementedError, KeyError):
        return False
    for jwk in keys:
        if kid and jwk.get("kid") != kid:
            continue
        if jwk.get("use") not in (None, "", "sig") or jwk.get("alg") not in (None, "", alg_name):
            continue
        try:
            key = alg.from_jwk(jwk)
            jwt.api_jws.PyJWS().decode_complete(tok.raw, key=key, algorithms=[alg_name])
        except (PyJWTError, ValueError, TypeError, KeyError):
            continue
        return True
    return False
