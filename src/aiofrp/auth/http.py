"""HTTP for OIDC (the token endpoint on frpc, discovery and JWKS on frps), on aiohttp (lazily imported).

What Go does and we do too:

* ``trustedCaFile``: only that CA file's certificates are trusted (Go replaces the system roots);
  ``insecureSkipVerify``: no certificate check at all. Otherwise the system's CAs (OpenSSL's
  defaults, so ``SSL_CERT_FILE``/``SSL_CERT_DIR`` work as they do for Go on Linux).
* ``proxyURL`` (``http``, ``https``, ``socks5``, ``socks5h``): every request goes through it. Go uses
  the ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` environment only when none of ``trustedCaFile``,
  ``insecureSkipVerify`` and ``proxyURL`` is set (its default HTTP client), and never for loopback
  hosts; so do we (:func:`env_proxy`). frps's discovery/JWKS requests always use the environment.

What we add: every request is bounded in time (Go's default client has no overall timeout) and
a response body is read up to :data:`MAX_BODY` bytes.
"""

from __future__ import annotations

import ipaddress
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

MAX_BODY = 1 << 20  # Go's oauth2 reads at most 1 MiB of a token response


class HTTPError(Exception):
    """The request failed before a response (or its body) arrived; ``str()`` says why, Go-like."""


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    content_type: str
    body: bytes

    @property
    def status_text(self) -> str:
        """Go's ``resp.Status``: ``401 Unauthorized``."""
        return f"{self.status} {self.reason}".rstrip()


def read_ca_file(path: str) -> ssl.SSLContext:
    """A client context trusting only the CA certificates in ``path``; ``ValueError`` with Go's text."""
    try:
        with open(path, "rb") as f:
            pem = f.read()
    except OSError as e:
        raise ValueError(f"failed to read OIDC CA certificate file {path!r}: {e.strerror or e}") from None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cadata=pem.decode("ascii", errors="replace"))
    except (ssl.SSLError, ValueError):
        raise ValueError(f"failed to parse OIDC CA certificate from file {path!r}") from None
    return ctx


def client_context(trusted_ca_file: str = "", insecure_skip_verify: bool = False) -> ssl.SSLContext:
    """The TLS context for HTTPS requests (see the module docstring)."""
    if insecure_skip_verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if trusted_ca_file:
        return read_ca_file(trusted_ca_file)
    return ssl.create_default_context()


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def env_proxy(url: str) -> str:
    """The proxy Go's ``http.ProxyFromEnvironment`` would use for ``url`` ("" for none)."""
    u = urllib.parse.urlsplit(url)
    host = u.hostname or ""
    if not host or _loopback(host):
        return ""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(u.scheme, "")
    if not proxy or urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return ""
    return proxy if "://" in proxy else f"http://{proxy}"


async def request(
    method: str,
    url: str,
    *,
    ssl_ctx: ssl.SSLContext,
    proxy: str = "",
    timeout: float,
    data: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One HTTP request, bounded by ``timeout`` seconds in total; :class:`HTTPError` if no response."""
    import aiohttp

    connector: Any = None
    http_proxy: str | None = None
    proxy_errors: tuple[type[BaseException], ...] = ()
    if proxy.startswith(("socks5://", "socks5h://")):
        import aiohttp_socks
        import python_socks

        proxy_errors = (
            aiohttp_socks.ProxyError, aiohttp_socks.ProxyConnectionError, aiohttp_socks.ProxyTimeoutError,
            python_socks.ProxyError, python_socks.ProxyConnectionError, python_socks.ProxyTimeoutError,
        )
        # Go's SOCKS5 dialer sends host names to the proxy for both schemes
        connector = aiohttp_socks.ProxyConnector.from_url(proxy.replace("socks5h://", "socks5://", 1), rdns=True, ssl=ssl_ctx)
    elif proxy:
        http_proxy = proxy
    else:
        connector = aiohttp.TCPConnector(ssl=ssl_ctx)
    session = aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout), trust_env=False
    )
    try:
        async with session, session.request(
            method, url, data=data, headers=headers, proxy=http_proxy, ssl=ssl_ctx
        ) as resp:
            body = await resp.content.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise HTTPError(f'{method} "{url}": response body larger than {MAX_BODY} bytes')
            return Response(resp.status, resp.reason or "", resp.headers.get("Content-Type", ""), body)
    except HTTPError:
        raise
    except TimeoutError:
        raise HTTPError(f'{method} "{url}": no response within {timeout:g}s') from None
    except aiohttp.ClientProxyConnectionError as e:
        raise HTTPError(f'{method} "{url}": proxyconnect: {_reason(e)}') from None
    except aiohttp.ClientConnectorCertificateError as e:
        raise HTTPError(f'{method} "{url}": tls: {e.certificate_error}') from None
    except aiohttp.ClientConnectorError as e:
        raise HTTPError(f'{method} "{url}": dial tcp {e.host}:{e.port}: {_reason(e)}') from None
    except (aiohttp.ClientError, OSError, ValueError) as e:
        raise HTTPError(f'{method} "{url}": {_reason(e)}') from None
    except proxy_errors as e:
        raise HTTPError(f'{method} "{url}": proxyconnect: {_reason(e)}') from None


def _reason(e: BaseException) -> str:
    inner = getattr(e, "os_error", None)
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror.lower()
    text = str(e)
    return text or type(e).__name__
