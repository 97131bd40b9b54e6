"""TLS over any asyncio transport, with OpenSSL doing the work through ``ssl.SSLObject``.

Unlike ``loop.start_tls`` this layer can start on bytes that were already read (frps sniffs
the first byte of every connection before it knows whether TLS follows) and can run over
transports that are not sockets (yamux streams, websocket, KCP).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Callable
from typing import Any, cast

from ..proto.uninit import new_bytearray
from .inbio import IncomingBIO
from .suites import prefer_go_suites

log = logging.getLogger("aiofrp.net.tls")

READ_SIZE = 256 * 1024
RECORD_SIZE = 16 * 1024 + 256  # one TLS record of plaintext, with slack
SMALL_WRITE = 4096
HANDSHAKE_TIMEOUT = 10.0


class TLSLayer(asyncio.Transport):
    """What both TLS transports share (this module's over MemoryBIO, ``net/tls_socket.py``'s on
    the socket): the application protocol, how writes become records, end of stream, and the
    TLS fields of ``get_extra_info``."""

    _app: asyncio.BaseProtocol
    _established: bool
    _closing: bool
    _lost: bool
    _reading_paused: bool
    _early_writes: list[bytes]
    handshake: asyncio.Future[None]

    def _tls(self) -> ssl.SSLObject | ssl.SSLSocket:
        raise NotImplementedError

    def _stopped(self) -> bool:
        """No more writes are taken (closing, closed, or our direction ended)."""
        raise NotImplementedError

    def _encrypt(self, data: Any) -> bool:
        """One piece to OpenSSL; False when that failed (the connection is closed then)."""
        raise NotImplementedError

    def _written(self) -> None:
        """After the pieces of one write: hand on what they made."""

    def _extra_info(self, name: str, default: Any) -> Any:
        raise NotImplementedError

    def _connected(self) -> None:
        """The handshake is done: the future and the protocol hear of it, early writes go out."""
        self._established = True
        if not self.handshake.done():
            self.handshake.set_result(None)
        self._app.connection_made(self)
        early, self._early_writes = self._early_writes, []
        if early:
            self.writelines(early)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writelines((data,))

    def writelines(self, list_of_data: Any) -> None:
        """Encrypt every piece; small pieces (frame headers, control messages) are coalesced into
        one record, big payloads go to OpenSSL as they are rather than being copied into one joined
        buffer first. Before the handshake, pieces wait and are sent after it in order."""
        if self._stopped():
            return
        if not self._established:
            self._early_writes.extend(bytes(d) for d in list_of_data if d)
            return
        encrypt = self._encrypt
        small: list[Any] = []
        for data in list_of_data:
            if len(data) < SMALL_WRITE:
                if data:
                    small.append(data)
                continue
            if small:
                if not encrypt(small[0] if len(small) == 1 else b"".join(small)):
                    return
                small = []
            if not encrypt(data):
                return
        if small and not encrypt(small[0] if len(small) == 1 else b"".join(small)):
            return
        self._written()

    def _eof(self) -> None:
        keep_open = False
        try:
            keep_open = bool(self._app.eof_received())  # type: ignore[attr-defined]
        finally:
            if not keep_open:
                self.close()

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def is_reading(self) -> bool:
        return not self._reading_paused

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._app = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._app

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._tls()
        if name == "peercert":
            return self._tls().getpeercert()
        if name == "cipher":
            return self._tls().cipher()
        return self._extra_info(name, default)


class TLSTransport(TLSLayer):
    """A TLS session on top of ``raw``; the application protocol sees plaintext.

    ``app_protocol.connection_made`` is called once the handshake completes; the
    :attr:`handshake` future reports success or the handshake error.
    """

    def __init__(
        self,
        raw: asyncio.BaseTransport,
        context: ssl.SSLContext,
        app_protocol: asyncio.BaseProtocol,
        *,
        server_side: bool,
        server_hostname: str | bytes | None = None,
        initial_data: bytes = b"",
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        super().__init__()
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._in = IncomingBIO()
        self._out = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in.bio, self._out, server_side=server_side, server_hostname=server_hostname)
        self._raw = cast(asyncio.Transport, raw)  # uvloop's transports are not subclasses of it
        self._app = app_protocol
        self._established = False
        self._closing = False
        self._lost = False
        self._reading_paused = False
        self._eof_sent = False
        self._early_writes: list[bytes] = []
        self.handshake: asyncio.Future[None] = loop.create_future()
        self._timer = loop.call_later(handshake_timeout, self._handshake_timeout)
        raw.set_protocol(_Lower(self))
        if initial_data:
            self._in.write(initial_data)
        self._do_handshake()

    # -- handshake --------------------------------------------------------------------------

    def _handshake_timeout(self) -> None:
        if not self._established:
            self._fail(TimeoutError("TLS handshake timeout"))

    def _do_handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._flush()
            self._fail(exc)
            return
        self._flush()
        self._timer.cancel()
        self._connected()
        self._read()

    def _fail(self, exc: BaseException) -> None:
        self._timer.cancel()
        if not self.handshake.done():
            self.handshake.set_exception(exc)
            self.handshake.exception()  # mark retrieved; the owner decides whether to log
        self._closing = True
        self._raw.abort()

    # -- incoming -------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        self._in.write(data)
        if self._established:
            if not self._reading_paused:
                self._read()
        else:
            self._do_handshake()

    def _read(self) -> None:
        """Decrypt everything available and hand it up in as few calls as possible.

        OpenSSL returns one TLS record (<= 16 KiB) per read; records are gathered into one
        fresh buffer per batch so the layers above run once per socket read, not per record.
        The buffer is never reused, so consumers may keep views of it.
        """
        sslobj = self._ssl
        inbio = self._in.bio  # the MemoryBIO itself: its pending is read once per record
        while not self._reading_paused and not self._lost:
            size = min(READ_SIZE, inbio.pending + RECORD_SIZE)
            # not zeroed first (bytearray(size) is a memset of up to 256 KiB per batch, ~5 % of
            # frpc's CPU in a TLS bulk transfer): only the part OpenSSL writes is handed on
            buf = new_bytearray(None, size)
            view = memoryview(buf)
            n = 0
            eof = False
            while n < size:
                try:
                    k = cast(int, sslobj.read(size - n, view[n:]))  # with a buffer: a count
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    eof = True
                    break
                except (ssl.SSLError, OSError) as exc:
                    log.debug("TLS read error: %s", exc)
                    self._flush()
                    self._raw.abort()
                    return
                if not k:
                    eof = True
                    break
                n += k
                if not inbio.pending and not sslobj.pending():
                    break  # nothing left to decrypt: skip the SSLWantReadError (an exception per batch)
            if n:
                self._app.data_received(view[:n])  # type: ignore[attr-defined]
            if eof:
                self._eof()
                break
            if n < size:
                break
        if self._out.pending:
            self._flush()

    # -- outgoing -------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._out.pending:
            self._raw.write(self._out.read())

    def _stopped(self) -> bool:
        return self._closing or self._lost or self._eof_sent

    def _encrypt(self, data: Any) -> bool:
        try:
            self._ssl.write(data)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS write error: %s", exc)
            self._raw.abort()
            return False
        return True

    def _written(self) -> None:
        """The ciphertext of a whole ``writelines`` goes to the socket in one write: a yamux
        flush of eight streams' frames is one system call."""
        self._flush()

    def can_write_eof(self) -> bool:
        # TLS 1.3 allows a half-close: our close_notify ends our direction only.
        return self._established and self._ssl.version() == "TLSv1.3"

    def write_eof(self) -> None:
        if self._eof_sent or self._closing or self._lost:
            return
        self._eof_sent = True
        try:
            self._ssl.unwrap()
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError, ValueError):
            self._raw.abort()
            return
        self._flush()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._established and not self._lost and not self._eof_sent:
            try:
                self._ssl.unwrap()
            except (ssl.SSLError, OSError, ValueError):
                pass
            self._flush()
        self._raw.close()

    def abort(self) -> None:
        self._closing = True
        self._raw.abort()

    # -- flow control ---------------------------------------------------------------------

    def pause_reading(self) -> None:
        if not self._reading_paused:
            self._reading_paused = True
            self._raw.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if not self._lost:
                self._raw.resume_reading()
                self._loop.call_soon(self._read_if_established)

    def _read_if_established(self) -> None:
        if self._established and not self._reading_paused:
            self._read()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size()

    def _tls(self) -> ssl.SSLObject:
        return self._ssl

    def _extra_info(self, name: str, default: Any) -> Any:
        return self._raw.get_extra_info(name, default)


class _Lower(asyncio.Protocol):
    """The protocol installed on the raw transport: ciphertext in, flow control up."""

    __slots__ = ("_tls",)

    def __init__(self, tls: TLSTransport) -> None:
        self._tls = tls

    def data_received(self, data: bytes) -> None:
        self._tls._feed(data)

    def eof_received(self) -> bool:
        tls = self._tls
        if tls._established:
            tls._eof()
        else:
            tls._fail(ConnectionResetError("connection closed during TLS handshake"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        tls = self._tls
        if tls._lost:
            return
        tls._lost = True
        tls._in.release()
        tls._timer.cancel()
        if not tls._established:
            if not tls.handshake.done():
                tls.handshake.set_exception(exc or ConnectionResetError("connection closed during TLS handshake"))
                tls.handshake.exception()
            return
        tls._app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._tls._established:
            self._tls._app.pause_writing()

    def resume_writing(self) -> None:
        if self._tls._established:
            self._tls._app.resume_writing()


# -- contexts -------------------------------------------------------------------------------


# The certificate of self_signed_pair(), made by cryptography; in a child process (below) its code
# is this text, so that it needs nothing of aiofrp.
_SELF_SIGNED_CODE = """
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime.now(datetime.timezone.utc)
name = x509.Name([])
cert = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(hours=1))
    .not_valid_after(now + datetime.timedelta(days=3650))
    .sign(key, hashes.SHA256())
)
CERT = cert.public_bytes(serialization.Encoding.PEM)
KEY = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
if __name__ == "__main__":
    sys.stdout.buffer.write(CERT + KEY)
"""

_PEM_KEY_BEGIN = b"-----BEGIN PRIVATE KEY-----"


def self_signed_pair() -> tuple[bytes, bytes]:
    """A fresh self-signed certificate and key (PEM), like frps makes when none is configured.

    ECDSA P-256 rather than Go's RSA-2048: handshakes are several times cheaper and every frp
    client accepts it (frpc skips verification unless ``trustedCaFile`` is set).
    """
    return start_self_signed_pair()()


def start_self_signed_pair() -> Callable[[], tuple[bytes, bytes]]:
    """Start making a self_signed_pair(); the callable returns it, waiting if need be.

    Made in a short-lived child process where that works: ``cryptography.x509`` and its Rust
    module would otherwise stay resident for good (about 13 MB, a third of an idle frps) for a job
    done once. The child starts now and runs while the caller goes on (0.2 s of interpreter and
    import time, off the start-up path). Made in this process when cryptography is loaded
    already, when the interpreter is frozen, or when the child fails.
    """
    child = None
    if "cryptography.x509" not in sys.modules and not getattr(sys, "frozen", False):
        child = _start_child()
    done: list[tuple[bytes, bytes]] = []

    def result() -> tuple[bytes, bytes]:
        if not done:
            pair = _child_result(child) if child is not None else None
            done.append(pair if pair is not None else _self_signed_here())
        return done[0]

    return result


def _self_signed_here() -> tuple[bytes, bytes]:
    scope: dict[str, Any] = {"__name__": "aiofrp.net.tls.self_signed"}
    exec(_SELF_SIGNED_CODE, scope)  # noqa: S102 - our own constant code, the child's too
    return scope["CERT"], scope["KEY"]


def _start_child() -> subprocess.Popen[bytes] | None:
    import importlib.util

    env = dict(os.environ)
    spec = importlib.util.find_spec("cryptography")  # where this process would import it from
    if spec is not None and spec.submodule_search_locations:
        site = os.path.dirname(next(iter(spec.submodule_search_locations)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH", "")) if p)
    try:
        return subprocess.Popen([sys.executable, "-c", _SELF_SIGNED_CODE], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        log.debug("self-signed certificate: no child process (%s); making it here", exc)
        return None


def _child_result(child: subprocess.Popen[bytes]) -> tuple[bytes, bytes] | None:
    try:
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        log.debug("self-signed certificate: child process timed out; making it here")
        return None
    at = out.find(_PEM_KEY_BEGIN)
    if child.returncode != 0 or not out.startswith(b"-----BEGIN CERTIFICATE-----") or at < 0:
        log.debug("self-signed certificate: child process exited %s (%s); making it here",
                  child.returncode, err.decode(errors="replace").strip()[-200:])
        return None
    return out[:at], out[at:]


def _load_pem_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # load_cert_chain reads files only. On Linux: two memfds (anonymous files of this process,
    # opened again through /proc/self/fd), so tempfile, which imports shutil and random (0.8 MB
    # of an idle frps), stays out, and the key never touches a file system.
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds: list[int] = []
        try:
            for pem in (cert_pem, key_pem):
                fds.append(fd := os.memfd_create("aiofrp-tls", os.MFD_CLOEXEC))
                view = memoryview(pem)
                while view:
                    view = view[os.write(fd, view):]
        except OSError:
            pass  # no memfd after all (an old kernel, a sandbox): a temporary directory below
        else:
            ctx.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
            return
        finally:
            for fd in fds:
                os.close(fd)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="aiofrp-tls-") as tmp:
        cpath = os.path.join(tmp, "cert.pem")
        kpath = os.path.join(tmp, "key.pem")
        with open(cpath, "wb") as f:
            f.write(cert_pem)
        with open(os.open(kpath, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cpath, kpath)


def load_self_signed(ctx: ssl.SSLContext, pair: Callable[[], tuple[bytes, bytes]]) -> None:
    """Load the pair of start_self_signed_pair() into ``ctx``."""
    _load_pem_chain(ctx, *pair())


def _named(what: str, path: str, load: Any) -> None:
    """Run ``load()``; an unreadable or invalid file raises OSError naming it (not a bare errno)."""
    try:
        load()
    except OSError as exc:  # ssl.SSLError included
        raise OSError(f"cannot load {what} {path!r}: {exc.strerror or getattr(exc, 'reason', None) or exc}") from None


def server_context(cert_file: str = "", key_file: str = "", trusted_ca_file: str = "",
                   self_signed: bool = True) -> ssl.SSLContext:
    """A TLS server context; without a certificate file, a self-signed one (``self_signed=False``:
    none yet, the caller loads one with ``load_self_signed`` before the first handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    prefer_go_suites(ctx)
    if cert_file or key_file:
        _named("certificate", cert_file, lambda: ctx.load_cert_chain(cert_file, key_file or None))
    elif self_signed:
        _load_pem_chain(ctx, *self_signed_pair())
    if trusted_ca_file:
        ctx.verify_mode = ssl.CERT_REQUIRED
        _named("trusted CA file", trusted_ca_file, lambda: ctx.load_verify_locations(trusted_ca_file))
    return ctx


def server_name(name: str | None) -> str | bytes | None:
    """A TLS server name as ``ssl`` should get it: an ASCII name as bytes (what the ``idna`` codec
    would make of it, since it leaves ASCII labels as they are) so that ``ssl`` does not import that
    codec (``stringprep`` and ``unicodedata``: 0.15 MB of an idle frpc); any other name as it is."""
    if not name:
        return None
    return name.encode("ascii") if name.isascii() else name


def client_context(cert_file: str = "", key_file: str = "", trusted_ca_file: str = "") -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    prefer_go_suites(ctx)
    if trusted_ca_file:
        _named("trusted CA file", trusted_ca_file, lambda: ctx.load_verify_locations(trusted_ca_file))
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_file:
        _named("certificate", cert_file, lambda: ctx.load_cert_chain(cert_file, key_file or None))
    return ctx
