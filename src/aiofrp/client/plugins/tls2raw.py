"""``tls2raw``: terminate TLS on each work connection and relay the plaintext to ``localAddr``
(Go's ``pkg/plugin/client/tls2raw.go``), typically behind an ``https`` proxy: frps routes by SNI,
frpc holds the certificate, the local service speaks plain TCP.

The certificate is ``crtPath``/``keyPath`` when both are set; otherwise a self-signed one is made
when the proxy starts, as Go does (``transport.NewServerTLSConfig``; ours is ECDSA P-256 where Go's
is RSA-2048, see ``net/tls.py: self_signed_pair``). The handshake runs first and the local dial
after it, as in Go; either failing logs Go's line and leaves that connection open with nothing
more on it, as Go's plugin does (it returns without closing): after a failed handshake the user has
the TLS alert, if any, then silence; the user's close ends it. A handshake not done within 10 s
(Go waits for ever) closes it.

The first record's header is judged as crypto/tls judges it, before OpenSSL sees it: an SSLv2
hello is answered Go's protocol_version alert, an oversized record Go's record_overflow (both in
a TLS 1.0 record, as Go writes alerts before a version is agreed); a record that is neither a
handshake nor an alert, or whose version is 16.0 or more ("first record does not look like a TLS
handshake"), and an alert, get no answer. Past that, OpenSSL's alerts are not always crypto/tls's.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from ...config.plugin import TLS2RawPluginOptions
from ...net.dialerr import dial_error_text
from ...net.relay import PendingConn, Relay
from ...net.tls import TLSTransport, server_context
from ...proto.addr import split_host_port
from . import PluginError, register
from .base import ClientPlugin, WorkConn
from .stream import PluginStream

log = logging.getLogger("aiofrp.client.plugin")

DIAL_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0  # net/tls.py's, for the first record's header too
MAX_CIPHERTEXT = 16384 + 2048  # crypto/tls maxCiphertext
MAX_HANDSHAKE = 65536  # crypto/tls maxHandshake


def _go_alert(description: int) -> bytes:
    """A fatal alert as crypto/tls writes it before a version is agreed (record version TLS 1.0)."""
    return bytes((0x15, 3, 1, 0, 2, 2, description))


def _first_record(header: bytes | bytearray) -> tuple[str, bytes] | None:
    """crypto/tls's checks of the first record's header and, when the record holds it, of the
    first handshake message's header (``header``: 5 bytes, 9 when the record has 4 or more):
    (its error, the alert it sends) when it gives up, else None."""
    if header[0] == 0x80:
        return "tls: unsupported SSLv2 handshake received", _go_alert(70)
    if header[0] not in (0x15, 0x16) or (header[1] << 8 | header[2]) >= 0x1000:
        return "tls: first record does not look like a TLS handshake", b""
    if header[0] == 0x15:
        return "remote error: tls: alert", b""
    n = header[3] << 8 | header[4]
    if n > MAX_CIPHERTEXT:
        return f"tls: oversized record received with length {n}", _go_alert(22)
    if n == 0:
        return "local error: tls: unexpected message", _go_alert(10)
    if len(header) >= 9 and (size := header[6] << 16 | header[7] << 8 | header[8]) > MAX_HANDSHAKE:
        return f"tls: handshake message of length {size} bytes exceeds maximum of {MAX_HANDSHAKE} bytes", _go_alert(80)
    return None


class _AbortGuard(asyncio.Transport):
    """The work connection as the TLS session sees it: the same transport (its methods bound
    through, nothing added per chunk) but for :meth:`abort`, which while ``holding`` closes it
    gracefully instead: the TLS layer aborts its connection on a failed handshake, which would
    drop the alert OpenSSL wrote. (Go's plugin then leaves the connection open with nothing on
    it until the user closes it; aiofrp closes it, README.)"""

    def __init__(self, raw: asyncio.Transport) -> None:
        super().__init__()
        self.raw = raw
        self.holding = True
        for name in ("write", "writelines", "write_eof", "can_write_eof", "close", "is_closing", "pause_reading",
                     "resume_reading", "is_reading", "set_write_buffer_limits", "get_write_buffer_size",
                     "get_extra_info", "set_protocol", "get_protocol"):
            self.__dict__[name] = getattr(raw, name)

    def abort(self) -> None:
        if self.holding:
            self.raw.close()
        else:
            self.raw.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


@register("tls2raw")
class TLS2RawPlugin(ClientPlugin[TLS2RawPluginOptions]):
    def __init__(self, proxy_name: str, cfg: TLS2RawPluginOptions) -> None:
        super().__init__(proxy_name, cfg)
        try:
            if cfg.crt_path and cfg.key_path:
                self._ctx = server_context(cfg.crt_path, cfg.key_path)
            else:
                self._ctx = server_context()
        except (OSError, ValueError) as exc:
            raise PluginError(str(exc)) from None

    async def handle(self, conn: WorkConn) -> None:
        stream = PluginStream(conn, limit=MAX_CIPHERTEXT)
        transport = stream.transport
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                await stream.fill(5)
                if stream.buf[0] == 0x16 and stream.buf[3] << 8 | stream.buf[4] >= 4:
                    await stream.fill(9)
        except (EOFError, TimeoutError) as exc:
            error = "TLS handshake timeout" if isinstance(exc, TimeoutError) else "unexpected EOF" if stream.buf else "EOF"
            self.xlog(log).warning("tls handshake error: %s", error)
            transport.close()
            return
        bad = _first_record(stream.buf)
        if bad is not None:
            error, alert = bad
            self.xlog(log).warning("tls handshake error: %s", error)
            if alert:
                transport.write(alert)
            transport.close()  # Go's plugin leaves it open, unserved (README)
            return
        data = bytes(stream.buf)
        guard = _AbortGuard(transport)
        pending = PendingConn()
        tls = TLSTransport(guard, self._ctx, pending, server_side=True, initial_data=data,
                           handshake_timeout=HANDSHAKE_TIMEOUT)
        transport.resume_reading()
        try:
            await tls.handshake
        except (ssl.SSLError, OSError, TimeoutError, ValueError) as exc:
            self.xlog(log).warning("tls handshake error: %s", exc)
            guard.holding = False
            if isinstance(exc, TimeoutError):
                transport.abort()
            else:
                transport.close()  # after OpenSSL's alert (Go leaves the connection open, unserved)
            return
        guard.holding = False
        loop = asyncio.get_running_loop()
        try:
            host, port = split_host_port(self.cfg.local_addr)
            async with asyncio.timeout(DIAL_TIMEOUT):
                local, lp = await loop.create_connection(PendingConn, host, port)
        except (OSError, TimeoutError, ValueError) as exc:
            error = str(exc) if isinstance(exc, ValueError) else dial_error_text(self.cfg.local_addr, exc)
            self.xlog(log).warning("dial to local addr error: %s", error)
            tls.close()  # Go's plugin leaves it open, unserved (README)
            return
        if conn.proxy_protocol_header is not None:  # as Go 0.70+ (0.65 leaves it out)
            local.write(conn.proxy_protocol_header)
        Relay(local, tls, a_data=lp.take(), a_eof=lp.eof, b_data=pending.take(), b_eof=pending.eof,
              name=self.proxy_name, limiter=conn.limiter)
