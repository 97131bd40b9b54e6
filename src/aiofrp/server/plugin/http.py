"""One ``[[httpPlugins]]`` entry: POSTs requests to ``addr + path`` (Go: pkg/plugin/server/http.go).

As Go: the URL is ``addr + path`` (``http://`` prepended when ``addr`` has no scheme; a ``path``
without its leading ``/`` makes a bad port and fails every request, as Go's ``url.Parse`` does)
plus ``?op=<Op>&version=0.1.0``; the headers Go's transport sends (``User-Agent:
Go-http-client/1.1``, ``Content-Type: application/json``, ``X-Frp-Reqid``, ``Accept-Encoding:
gzip``); an ``https://`` address skips certificate verification unless ``tlsVerify``; an
``http://`` one goes through the ``HTTP_PROXY`` environment like Go's default transport (never for
loopback hosts); any status but 200 is an error (``do http request error code: 500``), and so is
an answer Go's ``json.Unmarshal`` refuses (see ``types.parse_response``). The errors read as Go's
(``Post "<url>": dial tcp 127.0.0.1:9000: connect: connection refused``, ``Post "<url>": EOF``).

What we add: each request is bounded by :data:`TIMEOUT` seconds in total (Go's client has no
timeout: a plugin that never answers holds the request forever) and an answer is read up to
:data:`MAX_BODY` bytes. Connections are kept alive between requests, as Go's client does.
aiohttp is imported only when frps has plugins.
"""

from __future__ import annotations

import errno
import os
import re
import ssl
from typing import TYPE_CHECKING, Any

from ...proto.errors import ProtocolError
from .types import API_VERSION, Op, Response, parse_response, request_body

if TYPE_CHECKING:
    import aiohttp

    from ...config.server import HTTPPluginOptions

TIMEOUT = 30.0  # seconds for one request, connect to last byte of the answer
MAX_BODY = 1 << 20
GO_USER_AGENT = "Go-http-client/1.1"  # Go's default transport


class PluginError(Exception):
    """The request to the plugin failed (no answer, not 200, bad JSON); ``str()`` says why."""


class HTTPPlugin:
    def __init__(self, options: HTTPPluginOptions) -> None:
        from ...auth.http import client_context, env_proxy  # urllib.request: only when plugins are configured

        self.name = options.name
        self.ops = frozenset(Op(op) for op in options.ops)
        url = options.addr + options.path
        self.tls: ssl.SSLContext | None = None
        if url.startswith("https://"):
            self.tls = client_context(insecure_skip_verify=not options.tls_verify)
        elif not url.startswith("http://"):
            url = "http://" + url
        self.url = url
        self.bad_url = _url_error(url)  # Go fails every request to such a URL (its authority is all it looks at)
        self.proxy = env_proxy(url) if self.tls is None else ""
        self._session: aiohttp.ClientSession | None = None
        self.closed = False

    def supports(self, op: Op) -> bool:
        return op in self.ops

    def _client(self) -> aiohttp.ClientSession:
        if self.closed:
            raise PluginError("frps is shutting down")
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.tls if self.tls is not None else False),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                trust_env=False,
            )
        return self._session

    async def handle(self, op: Op, content: bytes, reqid: str) -> Response:
        """Send one request; the decoded answer, or :class:`PluginError`."""
        import aiohttp

        url = f"{self.url}?op={op.value}&version={API_VERSION}"  # Go: url.Values.Encode sorts the keys
        if self.bad_url:
            raise PluginError(f'parse "{url}": {self.bad_url}')
        try:
            async with self._client().post(
                url, data=request_body(op, content), headers=_headers(reqid), proxy=self.proxy or None,
                skip_auto_headers=_NOT_SENT,
            ) as resp:
                if resp.status != 200:
                    raise PluginError(f"do http request error code: {resp.status}")
                body = b""
                while len(body) <= MAX_BODY:  # read() returns what has arrived, b"" at the end
                    chunk = await resp.content.read(MAX_BODY + 1 - len(body))
                    if not chunk:
                        break
                    body += chunk
        except PluginError:
            raise
        except TimeoutError:
            raise PluginError(f'Post "{url}": no answer within {TIMEOUT:g}s') from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise PluginError(f'Post "{url}": tls: failed to verify certificate: {_x509(exc.certificate_error)}') from None
        except aiohttp.ClientConnectorError as exc:
            raise PluginError(f'Post "{url}": dial tcp {exc.host}:{exc.port}: {_reason(exc)}') from None
        except aiohttp.ServerDisconnectedError:
            raise PluginError(f'Post "{url}": EOF') from None  # Go: the connection closed before an answer
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise PluginError(f'Post "{url}": {_reason(exc)}') from None
        if len(body) > MAX_BODY:
            raise PluginError(f"the answer is larger than {MAX_BODY} bytes")
        try:
            return parse_response(body, op)
        except ProtocolError as exc:
            raise PluginError(str(exc)) from None

    async def close(self) -> None:
        self.closed = True  # controls closing with frps: no new session for their CloseProxy notices
        if self._session is not None:
            await self._session.close()
            self._session = None


# Go's transport sends User-Agent and Accept-Encoding (and decompresses a gzip answer) but no Accept.
_NOT_SENT = ("Accept", "Accept-Encoding", "User-Agent")


def _headers(reqid: str) -> dict[str, str]:
    return {"User-Agent": GO_USER_AGENT, "Content-Type": "application/json", "X-Frp-Reqid": reqid,
            "Accept-Encoding": "gzip"}


def _url_error(url: str) -> str:
    """What Go's ``url.Parse`` says of a port that is not a number (``addr`` ``host:port`` with a
    ``path`` that does not start with ``/``: ``127.0.0.1:9000handler``), else ""."""
    rest = url.split("://", 1)[1]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    host_end = authority.rfind("]") + 1 if authority.startswith("[") else 0
    colon = authority.find(":", host_end)
    port = authority[colon:] if colon >= 0 else ""
    if port and not port[1:].isdigit() and port != ":":
        return f'invalid port "{port}" after host'
    return ""


def _reason(exc: BaseException) -> str:
    """Go's text for a failed dial: ``connect: connection refused``, ``i/o timeout``, ..."""
    inner: Any = getattr(exc, "os_error", None)
    if isinstance(inner, OSError):
        if inner.errno and inner.errno in errno.errorcode:
            return f"connect: {os.strerror(inner.errno).lower()}"
        if inner.strerror:
            return str(inner.strerror).lower()
    return str(exc) or type(exc).__name__


def _x509(error: BaseException) -> str:
    """Go's x509 text for the usual certificate failures, OpenSSL's otherwise."""
    code = getattr(error, "verify_code", None)
    if code in _UNKNOWN_AUTHORITY:
        return "x509: certificate signed by unknown authority"
    if code in (9, 10):  # X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED
        return "x509: certificate has expired or is not yet valid"
    return f"x509: {getattr(error, 'verify_message', None) or error}"


# X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT(_LOCALLY), DEPTH_ZERO_SELF_SIGNED_CERT,
# SELF_SIGNED_CERT_IN_CHAIN, UNABLE_TO_VERIFY_LEAF_SIGNATURE
_UNKNOWN_AUTHORITY = frozenset({2, 18, 19, 20, 21})
