"""One ``[[httpPlugins]]`` entry: POSTs requests to ``addr + path`` (Go: pkg/plugin/server/http.go).

As Go: the URL is ``addr + path`` (``http://`` prepended when ``addr`` has no scheme) plus
``?op=<Op>&version=0.1.0``; headers ``X-Frp-Reqid`` and ``Content-Type: application/json``; an
``https://`` address skips certificate verification unless ``tlsVerify``; an ``http://`` one goes
through the ``HTTP_PROXY`` environment like Go's default transport (never for loopback hosts);
any status but 200 is an error (``do http request error code: 500``).

What we add: each request is bounded by :data:`TIMEOUT` seconds in total (Go's client has no
timeout: a plugin that never answers holds the request forever) and an answer is read up to
:data:`MAX_BODY` bytes. Connections are kept alive between requests, as Go's client does.
aiohttp is imported only when frps has plugins.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from ...proto.errors import ProtocolError
from .types import API_VERSION, Op, Response, parse_response, request_body

if TYPE_CHECKING:
    import aiohttp

    from ...config.server import HTTPPluginOptions

TIMEOUT = 30.0  # seconds for one request, connect to last byte of the answer
MAX_BODY = 1 << 20


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
        headers = {"X-Frp-Reqid": reqid, "Content-Type": "application/json"}
        try:
            async with self._client().post(
                url, data=request_body(op, content), headers=headers, proxy=self.proxy or None
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
            raise PluginError(f'Post "{url}": tls: {exc.certificate_error}') from None
        except aiohttp.ClientConnectorError as exc:
            raise PluginError(f'Post "{url}": dial tcp {exc.host}:{exc.port}: {_reason(exc)}') from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise PluginError(f'Post "{url}": {_reason(exc)}') from None
        if len(body) > MAX_BODY:
            raise PluginError(f"the answer is larger than {MAX_BODY} bytes")
        try:
            return parse_response(body)
        except ProtocolError as exc:
            raise PluginError(str(exc)) from None

    async def close(self) -> None:
        self.closed = True  # controls closing with frps: no new session for their CloseProxy notices
        if self._session is not None:
            await self._session.close()
            self._session = None


def _reason(exc: BaseException) -> str:
    inner: Any = getattr(exc, "os_error", None)
    if isinstance(inner, OSError) and inner.strerror:
        return str(inner.strerror).lower()
    return str(exc) or type(exc).__name__
