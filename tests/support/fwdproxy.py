"""Forward proxies for ``transport.proxyURL`` tests: an HTTP CONNECT proxy and a SOCKS5 proxy on
127.0.0.1, each recording every connection it saw (who, which target, which credentials, what it
answered), with optional user/password authentication. Threads, no asyncio: they serve real frp
processes and are stopped by :meth:`close` (or the context manager).
"""

from __future__ import annotations

import base64
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from typing import Self

from .ports import LOCALHOST

__all__ = ["HttpConnectProxy", "HttpsConnectProxy", "ProxyRecord", "Socks5Proxy"]


@dataclass
class ProxyRecord:
    """One client connection to a proxy."""

    peer: tuple[str, int]
    target: str = ""
    """``host:port`` the client asked for, as sent (a name stays a name)."""
    credentials: tuple[str, str] | None = None
    """The user and password the client sent (None: it sent none)."""
    outcome: str = ""
    """``connected``, ``auth-required``, ``auth-failed``, ``target-unreachable`` or ``bad-request``."""
    head: list[str] = field(default_factory=list)
    """HTTP: the request lines (request line and headers); SOCKS5: the offered auth methods."""
    atyp: int = 0
    """SOCKS5: the address type of the CONNECT (1 IPv4, 3 domain name, 4 IPv6)."""


class _Proxy:
    kind = "proxy"

    def __init__(self, auth: tuple[str, str] | None = None) -> None:
        self.auth = auth
        self.records: list[ProxyRecord] = []
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOCALHOST, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, daemon=True, name=f"{self.kind}-accept").start()

    @property
    def url_host(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    def url(self, scheme: str, user: str | None = None, password: str | None = None) -> str:
        cred = f"{user}:{password}@" if user is not None else ""
        return f"{scheme}://{cred}{self.url_host}"

    def connected(self) -> list[ProxyRecord]:
        with self._lock:
            return [r for r in self.records if r.outcome == "connected"]

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                c, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            c.settimeout(None)
            rec = ProxyRecord(peer=peer)
            with self._lock:
                self.records.append(rec)
                self._conns.append(c)
            threading.Thread(target=self._serve_safe, args=(c, rec), daemon=True).start()

    def _wrap(self, c: socket.socket) -> socket.socket:
        """The client's connection as the proxy speaks on it (HttpsConnectProxy: TLS)."""
        return c

    def _serve_safe(self, c: socket.socket, rec: ProxyRecord) -> None:
        try:
            c.settimeout(10)
            c = self._wrap(c)
            upstream = self._handshake(c, rec)
        except (OSError, ValueError, struct.error):
            rec.outcome = rec.outcome or "bad-request"
            upstream = None
        if upstream is None:
            c.close()
            return
        with self._lock:
            if self._stop.is_set():  # close() ran during the handshake: c is closed already
                upstream.close()
                return
            self._conns.append(upstream)
        try:
            c.settimeout(None)
        except OSError:  # close() closed c just now
            upstream.close()
            return
        t = threading.Thread(target=_pipe, args=(upstream, c), daemon=True)
        t.start()
        _pipe(c, upstream)

    def _handshake(self, c: socket.socket, rec: ProxyRecord) -> socket.socket | None:
        raise NotImplementedError

    def _dial(self, host: str, port: int, rec: ProxyRecord) -> socket.socket | None:
        try:
            up = socket.create_connection((host, port), timeout=5)
        except OSError:
            rec.outcome = "target-unreachable"
            return None
        up.settimeout(None)
        rec.outcome = "connected"
        return up

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except OSError:
                    pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _recv_exactly(c: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = c.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


class HttpConnectProxy(_Proxy):
    """``CONNECT host:port HTTP/1.1``; with ``auth``, ``Proxy-Authorization: Basic`` is required
    (407 without it, 407 for wrong credentials too, as squid does)."""

    kind = "http-proxy"

    def _handshake(self, c: socket.socket, rec: ProxyRecord) -> socket.socket | None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(1)  # byte by byte: nothing after the head is consumed
            if not chunk:
                raise ConnectionError("closed in the request head")
            head += chunk
            if len(head) > 16384:
                raise ValueError("head too long")
        lines = head.decode("latin-1").split("\r\n")[:-2]
        rec.head = lines
        method, target, _ = lines[0].split(" ", 2)
        rec.target = target
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        cred = headers.get("proxy-authorization", "")
        if cred.lower().startswith("basic "):
            user, _, password = base64.b64decode(cred[6:]).decode().partition(":")
            rec.credentials = (user, password)
        if method != "CONNECT":
            rec.outcome = "bad-request"
            c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return None
        if self.auth is not None and rec.credentials != self.auth:
            rec.outcome = "auth-required" if rec.credentials is None else "auth-failed"
            c.sendall(b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="t"\r\n'
                      b"Content-Length: 0\r\n\r\n")
            return None
        host, _, port = target.rpartition(":")
        up = self._dial(host.strip("[]"), int(port), rec)
        if up is None:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return None
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return up


class HttpsConnectProxy(HttpConnectProxy):
    """The same CONNECT proxy behind TLS (frp >= 0.69 ``https://`` proxy URLs), with ``context``'s
    certificate; a client that fails the TLS handshake is recorded as ``tls-failed``."""

    kind = "https-proxy"

    def __init__(self, context: ssl.SSLContext, auth: tuple[str, str] | None = None) -> None:
        self.context = context
        super().__init__(auth)

    def _wrap(self, c: socket.socket) -> socket.socket:
        return self.context.wrap_socket(c, server_side=True)

    def _serve_safe(self, c: socket.socket, rec: ProxyRecord) -> None:
        try:
            super()._serve_safe(c, rec)
        finally:
            if rec.outcome == "bad-request" and not rec.head:
                rec.outcome = "tls-failed"


class Socks5Proxy(_Proxy):
    """RFC 1928 CONNECT; with ``auth``, only user/password (RFC 1929) is accepted."""

    kind = "socks5-proxy"

    def _handshake(self, c: socket.socket, rec: ProxyRecord) -> socket.socket | None:
        ver, n = _recv_exactly(c, 2)
        if ver != 5:
            raise ValueError("not SOCKS5")
        methods = list(_recv_exactly(c, n))
        rec.head = [f"methods {methods}"]
        want = 2 if self.auth is not None else 0
        if want not in methods:
            rec.outcome = "auth-required"
            c.sendall(b"\x05\xff")
            return None
        c.sendall(bytes([5, want]))
        if want == 2:
            _, ulen = _recv_exactly(c, 2)
            user = _recv_exactly(c, ulen).decode()
            (plen,) = _recv_exactly(c, 1)
            password = _recv_exactly(c, plen).decode()
            rec.credentials = (user, password)
            if (user, password) != self.auth:
                rec.outcome = "auth-failed"
                c.sendall(b"\x01\x01")
                return None
            c.sendall(b"\x01\x00")
        _, cmd, _, atyp = _recv_exactly(c, 4)
        rec.atyp = atyp
        if atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, _recv_exactly(c, 4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exactly(c, 16))
        else:
            (ln,) = _recv_exactly(c, 1)
            host = _recv_exactly(c, ln).decode()
        (port,) = struct.unpack(">H", _recv_exactly(c, 2))
        rec.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reply_ok = b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", 0)
        if cmd != 1:
            rec.outcome = "bad-request"
            c.sendall(b"\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00")
            return None
        up = self._dial(host, port, rec)
        if up is None:
            c.sendall(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")  # connection refused
            return None
        c.sendall(reply_ok)
        return up
