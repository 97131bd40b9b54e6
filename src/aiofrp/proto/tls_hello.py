"""Just enough TLS to route by SNI: find the ClientHello at the start of a stream, read server_name.

Sans-I/O: :func:`parse_client_hello` looks at the bytes received so far and returns None while
the ClientHello is incomplete (it may span several handshake records, as Go accepts). Nothing is
consumed: the proxy forwards every byte, ClientHello included, to the TLS server behind frpc.
:class:`ClientHelloParser` does the same for a buffer that grows, resuming at the first record it
has not read yet: linear in the bytes, where parsing again from the start on every read would be
quadratic (a ClientHello in 1-byte records, one per TCP segment, cost seconds of CPU that way).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ProtocolError

__all__ = ["ALERT_UNRECOGNIZED_NAME", "ClientHello", "ClientHelloParser", "parse_client_hello"]

HANDSHAKE = 0x16
ALERT = 0x15
CLIENT_HELLO = 1
EXT_SUPPORTED_VERSIONS = 43
MAX_USELESS_RECORDS = 16  # Go's crypto/tls: warning alerts skipped before it gives up
EXT_SERVER_NAME = 0
MAX_RECORD = 16384 + 2048
MAX_HANDSHAKE = 65536  # Go's maxHandshake

# A fatal alert record: unrecognized_name (112). Go 0.65's frps answers an unknown SNI with it.
ALERT_UNRECOGNIZED_NAME = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112])


class TLSHelloError(ProtocolError):
    """The stream does not start with a well-formed TLS ClientHello."""


@dataclass(frozen=True, slots=True)
class ClientHello:
    server_name: str
    """SNI host name as sent ("" when the client sent none)."""
    length: int
    """Bytes of the stream (records) that carried the ClientHello."""
    offers_tls12: bool = True
    """It offers TLS 1.2 or 1.3 (supported_versions, else the legacy version as the highest): what
    Go's TLS server takes by default, and the unknown-name answer fails on the version first."""


def parse_client_hello(buf: bytes | bytearray) -> ClientHello | None:
    """The ClientHello at the start of ``buf``; None if more bytes are needed."""
    return ClientHelloParser().parse(buf)


class ClientHelloParser:
    """:func:`parse_client_hello` over a buffer that only grows between calls (the same bytes
    first, more appended): the records already read are not read again."""

    __slots__ = ("hs", "need", "pos", "skipped")

    def __init__(self) -> None:
        self.hs = bytearray()
        self.pos = 0  # the first record not read yet
        self.need = -1  # handshake message length once its header is known
        self.skipped = 0  # warning alerts passed over (Go's crypto/tls skips them)

    def parse(self, buf: bytes | bytearray) -> ClientHello | None:
        hs = self.hs
        pos = self.pos
        need = self.need
        try:
            while need < 0 or len(hs) < need + 4:
                if len(buf) < pos + 5:
                    return None
                ctype, major, rlen = buf[pos], buf[pos + 1], int.from_bytes(buf[pos + 3 : pos + 5], "big")
                if ctype != HANDSHAKE and ctype != ALERT:
                    raise TLSHelloError(f"not a TLS handshake record (content type {ctype:#04x})")
                if major >= 0x10:  # Go's crypto/tls: any version below 0x1000 before one is agreed
                    raise TLSHelloError(f"unsupported TLS record version {major}.{buf[pos + 2]}")
                if rlen == 0 or rlen > MAX_RECORD:
                    raise TLSHelloError(f"bad TLS record length {rlen}")
                if len(buf) < pos + 5 + rlen:
                    return None
                if ctype == ALERT:  # a warning is skipped (16 at most), anything else ends it (Go)
                    level, desc = buf[pos + 5], buf[pos + 6] if rlen > 1 else 0
                    self.skipped += 1
                    if rlen != 2 or level != 1 or desc == 0 or self.skipped > MAX_USELESS_RECORDS:
                        raise TLSHelloError("TLS alert instead of a ClientHello")
                    pos += 5 + rlen
                    continue
                hs += buf[pos + 5 : pos + 5 + rlen]
                pos += 5 + rlen
                if need < 0 and len(hs) >= 4:
                    if hs[0] != CLIENT_HELLO:
                        raise TLSHelloError(f"first handshake message is type {hs[0]}, not ClientHello")
                    need = int.from_bytes(hs[1:4], "big")
                    if need > MAX_HANDSHAKE:
                        raise TLSHelloError(f"ClientHello of {need} bytes is too large")
        finally:
            self.pos, self.need = pos, need
        name, tls12 = _read_hello(memoryview(hs)[4 : need + 4])
        return ClientHello(name, pos, tls12)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise TLSHelloError("truncated ClientHello")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, len_size: int) -> memoryview:
        return self.take(self.uint(len_size))

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _read_hello(body: memoryview) -> tuple[str, bool]:
    """The server_name of a ClientHello body, and whether it offers TLS 1.2 or 1.3."""
    r = _Reader(body)
    major, minor = r.take(2 + 32)[:2]  # legacy_version, random
    tls12 = major > 3 or (major == 3 and minor >= 3)  # the legacy version, without supported_versions
    if len(r.vector(1)) > 32:
        raise TLSHelloError("session id longer than 32 bytes")
    suites = r.vector(2)
    if not suites or len(suites) % 2:
        raise TLSHelloError("bad cipher suite list")
    if not r.vector(1):
        raise TLSHelloError("no compression methods")
    if not r.left:
        return "", tls12
    exts = _Reader(r.vector(2))
    name = ""
    seen: set[int] = set()
    while exts.left:
        etype = exts.uint(2)
        data = exts.vector(2)
        if etype in seen:  # Go's clientHelloMsg.unmarshal refuses a repeated extension
            raise TLSHelloError(f"extension {etype} twice")
        seen.add(etype)
        if etype == EXT_SUPPORTED_VERSIONS:
            versions = data[1 : 1 + data[0]] if data else data
            tls12 = any(versions[i] == 3 and versions[i + 1] in (3, 4) for i in range(0, len(versions) - 1, 2))
            continue
        if etype != EXT_SERVER_NAME:
            continue
        names = _Reader(_Reader(data).vector(2))
        while names.left:
            kind = names.uint(1)
            value = names.vector(2)
            if kind != 0:
                continue
            if name:  # several host names are prohibited (Go: the hello is refused)
                raise TLSHelloError("more than one SNI host name")
            name = bytes(value).decode("ascii", "replace")
            if not name or name.endswith("."):
                raise TLSHelloError(f"invalid SNI {name!r}")
    return name, tls12
