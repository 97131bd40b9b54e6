"""Local HTTP/HTTPS/WebSocket services and raw HTTP helpers for the vhost tests (aiohttp, loopback).

:class:`WebBackend` runs an aiohttp application on its own event-loop thread. Every response
carries ``X-Backend: <name>``. Routes:

``/ws``                 WebSocket echo (text and binary)
``/stream?n=&delay=``   chunked response: ``n`` chunks ``chunk-<i>\\n``, ``delay`` seconds apart
``/slow?delay=``        answers after ``delay`` seconds
``/upload``             reads the body as it arrives; answers ``{"size", "sha256"}``
``/big?size=``          ``size`` bytes of a repeating pattern
``/close``              HTTP/1.0-style body delimited by the connection close
anything else           JSON echo: method, path (raw, with query), headers, body length
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import threading
import time
from typing import Any, Self

from aiohttp import WSMsgType, web

LOCALHOST = "127.0.0.1"


class WebBackend:
    def __init__(self, name: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.ssl_context = ssl_context
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"web-{name}", daemon=True)
        self._runner: web.AppRunner | None = None
        self.requests = 0

    # -- handlers -----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"X-Backend": self.name}

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        info = {
            "backend": self.name,
            "method": request.method,
            "path": request.raw_path,
            "version": f"{request.version.major}.{request.version.minor}",
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
            "body_len": len(body),
            "peer": list(peer) if peer else None,
        }
        return web.json_response(info, headers=self._headers())

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        ws.headers.update(self._headers())
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        n = int(request.query.get("n", "3"))
        delay = float(request.query.get("delay", "0.3"))
        resp = web.StreamResponse(headers=self._headers())
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(n):
            if i:
                await asyncio.sleep(delay)
            await resp.write(f"chunk-{i}\n".encode())
        await resp.write_eof()
        return resp

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(float(request.query.get("delay", "3")))
        return web.Response(text="slow", headers=self._headers())

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        h = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            h.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha256": h.hexdigest()}, headers=self._headers())

    async def _big(self, request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("size", "1048576"))
        resp = web.StreamResponse(headers=self._headers())
        resp.content_length = size
        await resp.prepare(request)
        block = pattern_block()
        left = size
        while left:
            piece = block[: min(left, len(block))]
            await resp.write(piece)
            left -= len(piece)
        return resp

    async def _close(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={**self._headers(), "Connection": "close"})
        resp.force_close()
        await resp.prepare(request)
        await resp.write(b"until-close-body")
        await resp.write_eof()
        return resp

    # -- lifecycle ------------------------------------------------------------------------------

    async def _start(self) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/slow", self._slow)
        app.router.add_post("/upload", self._upload)
        app.router.add_put("/upload", self._upload)
        app.router.add_get("/big", self._big)
        app.router.add_get("/close", self._close)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOCALHOST, 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> WebBackend:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
            self._runner = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_BLOCK: bytes | None = None


def recv_head(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
    """Read from ``conn`` (after ``buf``, bytes already read) up to the end of a request head: the
    head without its blank line and what came after it; None when the connection ends first."""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def client_tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_server_context(directory: str, name: str = "backend") -> tuple[ssl.SSLContext, bytes]:
    """A server context with a fresh self-signed certificate; returns (context, certificate DER)."""
    import os

    from aiofrp.net.tls import self_signed_pair

    cert_pem, key_pem = self_signed_pair()
    cert_path = os.path.join(directory, f"{name}.crt")
    key_path = os.path.join(directory, f"{name}.key")
    with open(cert_path, "wb") as f:
        f.write(cert_pem)
    with open(key_path, "wb") as f:
        f.write(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, ssl.PEM_cert_to_DER_cert(cert_pem.decode())


def pattern_block() -> bytes:
    global _BLOCK
    if _BLOCK is None:
        _BLOCK = bytes(range(256)) * 1024  # 256 KiB
    return _BLOCK


def pattern_sha256(size: int) -> str:
    h = hashlib.sha256()
    block = pattern_block()
    left = size
    while left:
        piece = block[: min(left, len(block))]
        h.update(piece)
        left -= len(piece)
    return h.hexdigest()


# -- raw HTTP client helpers ----------------------------------------------------------------------


class RawResponse:
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, raw_head: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.raw_head = raw_head

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<RawResponse {self.status} {self.headers} {self.body[:80]!r}>"


class RawClient:
    """A blocking HTTP/1.1 connection for tests: send raw bytes, read one response at a time."""

    def __init__(self, port: int, *, timeout: float = 10.0, host: str = LOCALHOST,
                 server_name: str | None = None, tls: bool = False) -> None:
        """``tls``: speak TLS (no verification) with ``server_name`` as SNI (None: no SNI)."""
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            try:
                sock = client_tls_context().wrap_socket(sock, server_hostname=server_name)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.buf = b""
        self.timeout = timeout

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete response in time")
        self.sock.settimeout(left)
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True once the server closed the connection (EOF or reset) within ``timeout``."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def read_response(self, *, method: str = "GET", timeout: float | None = None) -> RawResponse:
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise ConnectionError(f"EOF before a response head; got {self.buf[:200]!r}")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        _version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
        resp = RawResponse(int(code), reason, headers, b"", head + b"\r\n\r\n")
        status = resp.status
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        te = (resp.header("transfer-encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill(deadline):
                        raise ConnectionError("EOF in chunked body")
                line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    if not self._fill(deadline):
                        raise ConnectionError("EOF in chunk")
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
            resp.body = body
        elif resp.header("content-length") is not None:
            n = int(resp.header("content-length") or 0)
            while len(self.buf) < n:
                if not self._fill(deadline):
                    raise ConnectionError("EOF in body")
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill(deadline):
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def request(self, method: str, path: str, host: str, headers: dict[str, str] | None = None,
                body: bytes = b"", version: str = "1.1") -> RawResponse:
        lines = [f"{method} {path} HTTP/{version}", f"Host: {host}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return self.read_response(method=method)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise TypeError(v)


def proxy_block(kind: str, name: str, local_port: int, **keys: object) -> str:
    """A ``[[proxies]]`` TOML block; ``keys`` verbatim (dotted names via ``**{...}``), None skipped."""
    pairs = {"name": name, "type": kind, "localIP": LOCALHOST, "localPort": local_port, **keys}
    return "\n[[proxies]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in pairs.items() if v is not None)


def http_request(port: int, method: str, path: str, host: str, headers: dict[str, str] | None = None,
                 body: bytes = b"", timeout: float = 10.0) -> RawResponse:
    """One request on a fresh connection (``Connection: close``)."""
    with RawClient(port, timeout=timeout) as c:
        return c.request(method, path, host, {"Connection": "close", **(headers or {})}, body)
