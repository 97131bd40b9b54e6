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

import logging
import os
from typing import TYPE_CHECKING

import asyncssh
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .tunnel import TunnelServer
from .virtual import InternalServer

if TYPE_CHECKING:
    from ...config.server import SSHTunnelGateway

log = logging.getLogger("aiofrp.server.sshgw")
logging.getLogger("asyncssh").setLevel(logging.WARNING)  # its INFO lines are one per packet type

HANDSHAKE_TIMEOUT = 10.0  # the gate's PREAUTH_TIMEOUT: TCP accept to ssh user authenticated
KEEPALIVE_INTERVAL = 30.0  # Go sends a "heartbeat" channel request every 30 s

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
            raise OSError(f"create ssh gateway error: {exc}") from None
        gw = cls(server, key)
        host = server.cfg.bind_addr
        gw.acceptor = await asyncssh.listen(
            "" if host in ("", "0.0.0.0", "::") else host, cfg.bind_port,
            server_factory=lambda: TunnelServer(gw), server_host_keys=[key],
            login_timeout=gw.handshake_timeout, keepalive_interval=KEEPALIVE_INTERVAL,
            encoding=None, allow_scp=False, agent_forwarding=False, x11_forwarding=False,
            reuse_port=server.reuse_port or None,  # frps --workers N: every worker listens
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


def load_host_key(cfg: SSHTunnelGateway) -> asyncssh.SSHKey:
    """The host key as Go reads or makes it; errors name the config key and the file."""
    if cfg.private_key_file:
        where = f"sshTunnelGateway.privateKeyFile: {cfg.private_key_file}"
        try:
            with open(cfg.private_key_file, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise OSError(f"{where}: {exc.strerror or exc}") from None
    else:
        path = cfg.auto_gen_private_key_path
        where = f"sshTunnelGateway.autoGenPrivateKeyPath: {path}"
        data = b""
        if path:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                pass
        if not data:
            data = new_random_private_key()
            if path:
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                except OSError as exc:
                    raise OSError(f"{where}: {exc.strerror or exc}") from None
    try:
        return asyncssh.import_private_key(data)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def load_authorized_keys(path: str) -> dict[bytes, str]:
    """An OpenSSH ``authorized_keys`` file: public key blob -> the key's comment (Go: the user).
    Blank and ``#`` lines are skipped; options before the key type are allowed; any other line
    that holds no key makes the whole file invalid (ValueError), as Go's ``ParseAuthorizedKey``."""
    with open(path, "rb") as f:
        data = f.read()
    keys: dict[bytes, str] = {}
    for lineno, raw in enumerate(data.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        words = line.split()
        for i in range(len(words) - 1):
            try:
                key = asyncssh.import_public_key(words[i] + b" " + words[i + 1])
            except (asyncssh.KeyImportError, ValueError):
                continue
            keys[key.public_data] = b" ".join(words[i + 2:]).decode(errors="replace").strip()
            break
        else:
            raise ValueError(f"{path}: line {lineno}: ssh: no key found")
    return keys
