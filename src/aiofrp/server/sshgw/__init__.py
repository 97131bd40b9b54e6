"""frps's SSH tunnel gateway (``sshTunnelGateway``; Go ``pkg/ssh/gateway.go``), on asyncssh.

``ssh -R :80:127.0.0.1:8080 v0@frps -p 2200 tcp --remote-port 9090`` makes a proxy on frps
without frpc: tunnel.py serves each ssh user, virtual.py is the frpc frps sees behind it,
command.py parses the command, channel.py turns ssh channels into transports for the relay.

Host key (as Go): ``privateKeyFile`` if set (a read or parse error stops frps), otherwise the key
in ``autoGenPrivateKeyPath`` (default ``./.autogen_ssh_key``), generated there (RSA 2048, PEM,
mode 0600) when the file is missing or empty. ``authorizedKeysFile``: when set, only its keys log
in (re-read at each attempt; a key's comment becomes the frp user); when empty, ssh asks for no
authentication and frp's own auth (``--token``) applies.

Beyond Go: the ssh handshake and login must finish within :data:`HANDSHAKE_TIMEOUT` seconds
(Go waits forever on a silent connection), and the server sends ssh keepalives, so a dead ssh
client's proxy goes away too.
"""

from __future__ import annotations

import base64
import binascii
import errno
import logging
import os
import re
from typing import TYPE_CHECKING

import asyncssh
from asyncssh.public_key import decode_ssh_public_key
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import ListenerError
from .command import _go_quote
from .tunnel import TunnelServer
from .virtual import InternalServer

if TYPE_CHECKING:
    from ...config.server import SSHTunnelGateway

log = logging.getLogger("aiofrp.server.sshgw")
logging.getLogger("asyncssh").setLevel(logging.WARNING)  # its INFO lines are one per packet type

HANDSHAKE_TIMEOUT = 10.0  # the gate's PREAUTH_TIMEOUT: TCP accept to ssh user authenticated
KEEPALIVE_INTERVAL = 30.0  # Go sends a "heartbeat" channel request every 30 s
SERVER_VERSION = "Go"  # the banner "SSH-2.0-Go" of x/crypto/ssh (``ssh -v``: remote software version Go)

__all__ = ["Gateway", "load_authorized_keys", "load_host_key"]


class Gateway:
    def __init__(self, server: InternalServer, host_key: asyncssh.SSHKey) -> None:
        self.server = server
        self.cfg: SSHTunnelGateway = server.cfg.ssh_tunnel_gateway
        self.host_key = host_key
        self.handshake_timeout = HANDSHAKE_TIMEOUT
        self.tunnels: set[TunnelServer] = set()
        self.acceptor: asyncssh.SSHAcceptor | None = None

    @classmethod
    async def start(cls, server: InternalServer) -> Gateway:
        cfg = server.cfg.ssh_tunnel_gateway
        try:
            key = load_host_key(cfg)
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise ListenerError(f"create ssh gateway error: {exc}") from None  # Go's line, as it is
        gw = cls(server, key)
        host = server.cfg.bind_addr
        gw.acceptor = await asyncssh.listen(
            "" if host in ("", "0.0.0.0", "::") else host, cfg.bind_port,
            server_factory=lambda: TunnelServer(gw), server_host_keys=[key],
            login_timeout=gw.handshake_timeout, keepalive_interval=KEEPALIVE_INTERVAL,
            encoding=None, allow_scp=False, agent_forwarding=False, x11_forwarding=False,
            reuse_port=server.reuse_port or None,  # frps --workers N: every worker listens
            server_version=SERVER_VERSION,
        )
        log.info("frps sshTunnelGateway listen on port %d", cfg.bind_port)
        return gw

    def authorized_keys(self) -> dict[bytes, str]:
        return load_authorized_keys(self.cfg.authorized_keys_file)

    def close(self) -> None:
        if self.acceptor is not None:
            self.acceptor.close()
        for tunnel in list(self.tunnels):
            tunnel.close()


def new_random_private_key() -> bytes:
    """Go ``transport.NewRandomPrivateKey``: RSA 2048 in PKCS#1 PEM (``RSA PRIVATE KEY``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def go_file_error(op: str, path: str, exc: OSError) -> str:
    """Go's ``*fs.PathError`` text: ``open PATH: no such file or directory`` (the errno's text in
    lower case)."""
    if exc.errno is None:
        return f"{op} {path}: {exc}"
    text = os.strerror(exc.errno)
    return f"{op} {path}: {text[:1].lower()}{text[1:]}"


def _read(path: str) -> bytes:
    """Go ``os.ReadFile``, whose open of a directory succeeds and whose read fails: OSError with
    Go's text (``open PATH: ...``, ``read PATH: is a directory``)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        op = "read" if exc.errno == errno.EISDIR else "open"
        raise OSError(go_file_error(op, path, exc)) from None


_PEM_BEGIN = re.compile(rb"(?:^|\n)-----BEGIN ([^\n]*)-----\r?\n")
_GO_KEY_TYPES = {b"RSA PRIVATE KEY", b"PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY", b"OPENSSH PRIVATE KEY"}


def parse_private_key(data: bytes) -> asyncssh.SSHKey:
    """x/crypto ``ssh.ParsePrivateKey``: a PEM block or ``ssh: no key found``; Go's texts for the
    errors a user meets (no key, a passphrase, an unknown PEM type)."""
    m = _PEM_BEGIN.search(data)
    if m is None or b"-----END " + m[1] + b"-----" not in data[m.end():]:
        raise ValueError("ssh: no key found")
    if m[1] not in _GO_KEY_TYPES:
        raise ValueError(f"ssh: unsupported key type {_go_quote(m[1].decode(errors='replace'))}")
    try:
        return asyncssh.import_private_key(data)
    except (asyncssh.KeyImportError, ValueError) as exc:
        if "assphrase" in str(exc):
            raise ValueError("ssh: this private key is passphrase protected") from None
        raise ValueError(str(exc)) from None


def load_host_key(cfg: SSHTunnelGateway) -> asyncssh.SSHKey:
    """The host key as Go reads or makes it (Go ``NewGateway``). Errors carry Go's text first
    (``open PATH: no such file or directory``, ``ssh: no key found``), then the config key that
    named the file in parentheses."""
    if cfg.private_key_file:
        where = f"sshTunnelGateway.privateKeyFile = {cfg.private_key_file}"
        try:
            data = _read(cfg.private_key_file)
        except OSError as exc:
            raise OSError(f"{exc} (sshTunnelGateway.privateKeyFile)") from None
    else:
        path = cfg.auto_gen_private_key_path
        where = f"sshTunnelGateway.autoGenPrivateKeyPath = {path}"
        data = b""
        if path:
            try:
                data = _read(path)
            except OSError:
                pass  # Go: the read error is ignored, a key is made and written there
        if not data:
            data = new_random_private_key()
            if path:
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                except OSError as exc:
                    raise OSError(f"{go_file_error('open', path, exc)} (sshTunnelGateway.autoGenPrivateKeyPath)") from None
    try:
        return parse_private_key(data)
    except ValueError as exc:
        raise ValueError(f"{exc} ({where})") from None


_WS = b" \t\n\r\x0b\x0c"


def _index_blank(data: bytes) -> int:
    """Go ``bytes.IndexAny(data, " \\t")``."""
    found = [i for i in (data.find(b" "), data.find(b"\t")) if i != -1]
    return min(found) if found else -1


def _parse_key_field(data: bytes) -> tuple[bytes, str] | None:
    """x/crypto ``parseAuthorizedKey`` (the key type word already skipped): base64 key, comment."""
    data = data.strip(_WS)
    i = _index_blank(data)
    if i == -1:
        i = len(data)
    try:
        blob = base64.b64decode(data[:i], validate=True)
        key = decode_ssh_public_key(blob)
    except (binascii.Error, ValueError, asyncssh.KeyImportError):
        return None
    return key.public_data, data[i:].strip(_WS).decode(errors="replace")


def _parse_authorized_key(data: bytes) -> tuple[bytes, str, bytes] | None:
    """x/crypto ``ssh.ParseAuthorizedKey`` (v0.37): the first key in ``data`` (blob, comment, the
    rest), or None (Go: ``ssh: no key found``). A line that holds no key is skipped."""
    while data:
        end = data.find(b"\n")
        line, rest = (data[:end], data[end + 1:]) if end != -1 else (data, b"")
        cr = line.find(b"\r")
        if cr != -1:
            line = line[:cr]
        line = line.strip(_WS)
        data = rest
        if not line or line[:1] == b"#":
            continue
        found = _key_after_type(line)
        if found is not None:
            return (*found, rest)
        # maybe options come first: they end at the first blank outside double quotes
        in_quote = False
        i = 0
        for i, b in enumerate(line):
            if not in_quote and b in b" \t":
                break
            if b == 0x22 and (i == 0 or line[i - 1] != 0x5C):
                in_quote = not in_quote
        while i < len(line) and line[i] in b" \t":
            i += 1
        if i == len(line):
            continue
        found = _key_after_type(line[i:])
        if found is not None:
            return (*found, rest)
    return None


def _key_after_type(line: bytes) -> tuple[bytes, str] | None:
    """``line`` as ``TYPE KEY [COMMENT]``: the key's blob and comment, None if it is not one."""
    i = _index_blank(line)
    return None if i == -1 else _parse_key_field(line[i:])


def load_authorized_keys(path: str) -> dict[bytes, str]:
    """An OpenSSH ``authorized_keys`` file as Go frps reads it (``loadAuthorizedKeysFromFile``):
    public key blob -> the key's comment (the frp user). Go calls x/crypto's
    ``ParseAuthorizedKey`` until nothing is left, so lines without a key are skipped while a key
    follows, and a file whose last key is followed by a line that is not one is refused as a
    whole: ValueError ``ssh: no key found``. Unlike Go, blank lines and ``#`` comments after the
    last key are no such line (Go refuses every key of a file that ends with a comment or an empty
    line; README). OSError: Go's ``open PATH: ...`` text."""
    data = _read(path)
    keys: dict[bytes, str] = {}
    while data:
        found = _parse_authorized_key(data)
        if found is None:
            if all(not ln.strip(_WS) or ln.strip(_WS)[:1] == b"#" for ln in data.split(b"\n")):
                break
            raise ValueError("ssh: no key found")
        blob, comment, data = found
        keys[blob] = comment.strip()
    return keys
