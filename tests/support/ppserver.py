"""Local services that expect a PROXY protocol header (v1 or v2) first, for frp §5.11 tests.

:class:`PPTcpServer` reads exactly the header from each connection (byte by byte for v1, fixed
sizes for v2, so nothing behind it is consumed), records it, then serves the rest as ``echo``,
``http`` (one request, one ``200`` answer with ``Connection: close``) or ``https`` (TLS, then
``http``). :class:`PPUdpServer` records the header in front of every datagram and echoes the
payload without it. Parsed headers are :class:`PPHeader` values.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import struct
import threading
from dataclasses import dataclass
from typing import Self

LOCALHOST = "127.0.0.1"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
_FAMILIES = {0x11: "TCP4", 0x21: "TCP6", 0x12: "UDP4", 0x22: "UDP6", 0x00: "UNSPEC"}


@dataclass(frozen=True)
class PPHeader:
    version: int
    family: str  # TCP4, TCP6, UDP4, UDP6, UNKNOWN / UNSPEC
    src: tuple[str, int] | None = None
    dst: tuple[str, int] | None = None


def parse_header(data: bytes) -> tuple[PPHeader, bytes]:
    """Split a complete header off ``data``; ValueError if ``data`` does not start with one."""
    if data.startswith(V2_SIG):
        if len(data) < 16:
            raise ValueError("short v2 header")
        cmd, fam = data[12], data[13]
        (length,) = struct.unpack(">H", data[14:16])
        body, rest = data[16:16 + length], data[16 + length:]
        if len(body) != length or cmd >> 4 != 2:
            raise ValueError("bad v2 header")
        family = _FAMILIES.get(fam, f"0x{fam:02x}")
        if fam in (0x11, 0x12):
            src = (str(ipaddress.IPv4Address(body[0:4])), struct.unpack(">H", body[8:10])[0])
            dst = (str(ipaddress.IPv4Address(body[4:8])), struct.unpack(">H", body[10:12])[0])
            return PPHeader(2, family, src, dst), rest
        if fam in (0x21, 0x22):
            src = (str(ipaddress.IPv6Address(body[0:16])), struct.unpack(">H", body[32:34])[0])
            dst = (str(ipaddress.IPv6Address(body[16:32])), struct.unpack(">H", body[34:36])[0])
            return PPHeader(2, family, src, dst), rest
        return PPHeader(2, family), rest
    if data.startswith(b"PROXY "):
        end = data.find(b"\r\n")
        if end < 0:
            raise ValueError("unterminated v1 header")
        parts = data[:end].decode("ascii").split(" ")
        rest = data[end + 2:]
        if parts[1] == "UNKNOWN":
            return PPHeader(1, "UNKNOWN"), rest
        _, fam, sip, dip, sport, dport = parts
        return PPHeader(1, fam, (sip, int(sport)), (dip, int(dport))), rest
    raise ValueError(f"no PROXY header in {data[:32]!r}")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("EOF inside the PROXY header")
        buf += chunk
    return buf


def read_header(sock: socket.socket) -> PPHeader:
    """Read exactly one header from a blocking socket."""
    first = _recv_exact(sock, 1)
    if first == b"\r":
        head = first + _recv_exact(sock, 15)
        head += _recv_exact(sock, struct.unpack(">H", head[14:16])[0])
    else:
        head = first
        while not head.endswith(b"\r\n"):
            if len(head) > 107:
                raise ValueError("v1 header too long")
            head += _recv_exact(sock, 1)
    header, _ = parse_header(head)
    return header


class PPTcpServer:
    """TCP service on 127.0.0.1 that wants a PROXY header first; ``headers`` in arrival order."""

    def __init__(self, mode: str = "echo", *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.mode = mode
        self.ssl_context = ssl_context
        self.headers: list[PPHeader] = []
        self.errors: list[str] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOCALHOST, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="pp-tcp", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="pp-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with conn:
                self.headers.append(read_header(conn))
                if self.mode == "echo":
                    while data := conn.recv(65536):
                        conn.sendall(data)
                    return
                sock: socket.socket = conn
                if self.mode == "https":
                    assert self.ssl_context is not None
                    sock = self.ssl_context.wrap_socket(conn, server_side=True)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                body = b"pp-ok"
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                             % (len(body), body))
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError, ssl.SSLError) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")


class PPUdpServer:
    """UDP service on 127.0.0.1: records the header of every datagram, echoes the payload."""

    def __init__(self) -> None:
        self.headers: list[PPHeader] = []
        self.errors: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((LOCALHOST, 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pp-udp", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                header, payload = parse_header(data)
            except ValueError as exc:
                self.errors.append(str(exc))
                continue
            self.headers.append(header)
            self._sock.sendto(payload, addr)
