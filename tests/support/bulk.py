"""Bulk transfer sink/source for throughput tests and benchmarks: :class:`BulkServer` (a
thread per connection, optional SHA-256), clients :func:`bulk_upload` / :func:`bulk_download`,
and the ``bulk_server`` fixture."""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .ports import LOCALHOST
from .services import _Service

try:  # fixtures are only defined when pytest is around (bench/ imports this module too)
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

__all__ = ["BulkRecord", "BulkResult", "BulkServer", "bulk_download", "bulk_pattern", "bulk_upload"]

#
# Wire protocol (client -> server header, 16 bytes): b"AFB1", op (1 = upload: client sends LENGTH
# bytes which the server sinks; 2 = download: server sources LENGTH bytes), flags (bit 0: SHA-256),
# 2 pad bytes, LENGTH (u64 BE).
#   upload:   server replies after the last byte: received (u64), elapsed_ns first->last byte (u64),
#             sha256 (32 bytes, zero if not requested).
#   download: server sends LENGTH bytes followed by their sha256 (32 bytes, zero if not requested).
# Nothing relies on half-close: frp closes both directions when either side reaches EOF.

_BULK_HDR = struct.Struct(">4sBBxxQ")
_BULK_MAGIC = b"AFB1"
_OP_UPLOAD, _OP_DOWNLOAD = 1, 2
_FLAG_SHA = 1
_UP_REPLY = struct.Struct(">QQ32s")
_ZERO_SHA = bytes(32)
_PATTERN_SIZE = 1 << 20
_pattern_cache: dict[str, bytes] = {}


def bulk_pattern(kind: str = "random") -> bytes:
    """The 1 MiB block a bulk source repeats: deterministic pseudo-random bytes (incompressible) or zeros."""
    if kind not in _pattern_cache:
        if kind == "random":
            _pattern_cache[kind] = random.Random(0x5EED_F00D).randbytes(_PATTERN_SIZE)
        elif kind == "zeros":
            _pattern_cache[kind] = bytes(_PATTERN_SIZE)
        else:
            raise ValueError(kind)
    return _pattern_cache[kind]


def _set_deadline(sock: socket.socket, deadline: float, what: str) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"bulk transfer deadline exceeded while {what}")
    sock.settimeout(remaining)


def _recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        _set_deadline(sock, deadline, "reading")
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)}/{n} bytes")
        buf += chunk
    return bytes(buf)


def _source(sock: socket.socket, size: int, hasher: Any, deadline: float, block: bytes) -> None:
    mv = memoryview(block)
    left = size
    while left:
        piece = mv[: min(left, len(mv))]
        if hasher is not None:
            hasher.update(piece)
        _set_deadline(sock, deadline, "sending")
        sock.sendall(piece)
        left -= len(piece)


def _sink(sock: socket.socket, size: int, hasher: Any, deadline: float, bufsize: int) -> tuple[int, int, int]:
    """Read up to ``size`` bytes; return (received, t_first_ns, t_last_ns)."""
    buf = bytearray(bufsize)
    mv = memoryview(buf)
    got = 0
    t_first = t_last = 0
    while got < size:
        _set_deadline(sock, deadline, "receiving")
        k = sock.recv_into(buf, min(bufsize, size - got))
        if k == 0:
            break
        if not got:
            t_first = time.perf_counter_ns()
        got += k
        if hasher is not None:
            hasher.update(mv[:k])
    t_last = time.perf_counter_ns()
    return got, t_first, t_last


@dataclass
class BulkResult:
    """Outcome of one bulk transfer.  ``seconds``: at the sink, first byte to last byte."""

    direction: str  # "upload" (client -> service) or "download" (service -> client)
    size: int
    received: int
    seconds: float
    sha256_sent: str | None = None
    sha256_received: str | None = None

    @property
    def ok(self) -> bool:
        return self.received == self.size and self.sha256_sent == self.sha256_received

    @property
    def mb_per_s(self) -> float:
        return self.received / self.seconds / 1e6 if self.seconds > 0 else float("inf")


@dataclass
class BulkRecord:
    """What :class:`BulkServer` saw for one connection."""

    op: str
    size: int
    transferred: int
    seconds: float
    sha256: str | None
    error: str | None = None


class BulkServer(_Service):
    """Sink/source TCP service for bulk transfers (thread per connection, blocking sockets, big buffers).

    Use :func:`bulk_upload` / :func:`bulk_download` against its port (directly or through a proxy).
    Completed transfers are appended to ``records``.  ``idle_timeout`` bounds every socket wait.
    """

    def __init__(self, port: int = 0, *, pattern: str = "random", bufsize: int = 1 << 20,
                 idle_timeout: float = 60.0) -> None:
        self.port = port
        self.block = bulk_pattern(pattern)
        self.bufsize = bufsize
        self.idle_timeout = idle_timeout
        self.records: list[BulkRecord] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> BulkServer:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LOCALHOST, self.port))
        s.listen(128)
        s.settimeout(0.1)  # lets the accept loop notice stop()
        self._sock = s
        self.port = s.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, name="test-bulk", daemon=True)
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="test-bulk-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        rec = BulkRecord("?", 0, 0, 0.0, None)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            magic, op, flags, size = _BULK_HDR.unpack(
                _recv_exact(conn, _BULK_HDR.size, time.monotonic() + self.idle_timeout)
            )
            if magic != _BULK_MAGIC or op not in (_OP_UPLOAD, _OP_DOWNLOAD):
                raise ValueError(f"bad bulk header {magic!r} op={op}")
            hasher = hashlib.sha256() if flags & _FLAG_SHA else None
            rec.size = size
            # Whole-transfer deadline: generous, but finite (>= 1 MB/s plus the idle timeout).
            deadline = time.monotonic() + self.idle_timeout + size / 1e6
            if op == _OP_UPLOAD:
                rec.op = "upload"
                got, t0, t1 = _sink(conn, size, hasher, deadline, self.bufsize)
                rec.transferred, rec.seconds = got, (t1 - t0) / 1e9
                digest = hasher.digest() if hasher else _ZERO_SHA
                rec.sha256 = hasher.hexdigest() if hasher else None
                _set_deadline(conn, deadline, "replying")
                conn.sendall(_UP_REPLY.pack(got, t1 - t0, digest))
            else:
                rec.op = "download"
                t0 = time.perf_counter_ns()
                _source(conn, size, hasher, deadline, self.block)
                rec.transferred, rec.seconds = size, (time.perf_counter_ns() - t0) / 1e9
                rec.sha256 = hasher.hexdigest() if hasher else None
                _set_deadline(conn, deadline, "sending trailer")
                conn.sendall(hasher.digest() if hasher else _ZERO_SHA)
                # Wait (bounded) for the client to close first, so our close cannot race its reads.
                with contextlib.suppress(OSError):
                    conn.settimeout(min(5.0, self.idle_timeout))
                    conn.recv(1)
        except (OSError, ValueError, struct.error) as e:
            rec.error = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()
            self.records.append(rec)

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._lock:
            for c in list(self._conns):
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


def _bulk_connect(host: str, port: int, op: int, size: int, verify: bool, timeout: float) -> socket.socket:
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(_BULK_HDR.pack(_BULK_MAGIC, op, _FLAG_SHA if verify else 0, size))
    return s


def bulk_upload(port: int, size: int, *, verify: bool = True, timeout: float = 60.0, host: str = LOCALHOST,
                pattern: str = "random") -> BulkResult:
    """Send ``size`` bytes to a :class:`BulkServer` (maybe through a proxy).  Timing is the server's
    (first byte to last byte received).  ``verify`` compares SHA-256 of sent and received data."""
    deadline = time.monotonic() + timeout
    hasher = hashlib.sha256() if verify else None
    with _bulk_connect(host, port, _OP_UPLOAD, size, verify, timeout) as s:
        _source(s, size, hasher, deadline, bulk_pattern(pattern))
        got, elapsed_ns, digest = _UP_REPLY.unpack(_recv_exact(s, _UP_REPLY.size, deadline))
    return BulkResult("upload", size, got, elapsed_ns / 1e9,
                      hasher.hexdigest() if hasher else None, digest.hex() if verify else None)


def bulk_download(port: int, size: int, *, verify: bool = True, timeout: float = 60.0, host: str = LOCALHOST,
                  bufsize: int = 1 << 20) -> BulkResult:
    """Receive ``size`` bytes from a :class:`BulkServer`; timing is ours (first to last byte)."""
    deadline = time.monotonic() + timeout
    hasher = hashlib.sha256() if verify else None
    with _bulk_connect(host, port, _OP_DOWNLOAD, size, verify, timeout) as s:
        got, t0, t1 = _sink(s, size, hasher, deadline, bufsize)
        sent_digest = _recv_exact(s, 32, deadline) if got == size else _ZERO_SHA
    return BulkResult("download", size, got, (t1 - t0) / 1e9,
                      sent_digest.hex() if verify else None, hasher.hexdigest() if hasher else None)


if pytest is not None:

    @pytest.fixture
    def bulk_server() -> Iterator[BulkServer]:
        with BulkServer() as s:
            yield s
