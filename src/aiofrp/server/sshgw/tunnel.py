"""One ssh user on the gateway (Go ``pkg/ssh/server.go: TunnelServer``).

After the ssh handshake (bounded by ``login_timeout``), the user's ``tcpip-forward`` request (the
``-R`` address) and the command of its first session (``exec``) are awaited for
:data:`FORWARD_TIMEOUT` seconds. The command is parsed (command.py), a virtual frpc logs in and
registers the proxy (virtual.py), and every user connection of that proxy becomes a
``forwarded-tcpip`` channel to the ssh client, relayed to its work connection. What Go writes to
the user (the success block, an error text, the usage) goes to the first session channel; the
ssh connection is closed after an error, and when it ends the virtual client's control ends with
it, so frps closes the proxy.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import asyncssh

from ...net.msgconn import MsgConn
from ...net.relay import Relay
from ...proto.addr import fmt_addr
from . import command
from .channel import ChannelSession
from .virtual import VirtualClient, VirtualClientError

if TYPE_CHECKING:
    from . import Gateway

log = logging.getLogger("aiofrp.server.sshgw")

FORWARD_TIMEOUT = 3.0  # Go: waitForwardAddrAndExtraPayload(..., 3*time.Second)


def success_info(user: str, name: str, proxy_type: str, remote_addr: str) -> str:
    """Go ``pkg/ssh/terminal.go: createSuccessInfo``."""
    return (
        "\nfrp (via SSH) (Ctrl+C to quit)\n\n"
        f"User: {user}\nProxyName: {name}\nType: {proxy_type}\nRemoteAddress: {remote_addr}\n"
    )


# ``ssh -R 0:...`` asks for a port to be allocated and wants it in the reply (Go replies without
# one and OpenSSH gives up: "parse packet: incomplete message"); the forward's port only names it
# in the forwarded-tcpip channels, so any will do.
NOMINAL_PORT = 80


class _NoListener(asyncssh.SSHListener):
    """An accepted ``tcpip-forward`` for which nothing listens on the frps host."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._port = port

    def get_port(self) -> int:
        return self._port


class _Session(asyncssh.SSHServerSession[bytes]):
    """A session channel: its exec command is the gateway command; the first one gets the output."""

    def __init__(self, tunnel: TunnelServer) -> None:
        self.tunnel = tunnel

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        if self.tunnel.first_channel is None:
            self.tunnel.first_channel = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: object) -> bool:
        return True  # Go replies true to every request of the session

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.tunnel.got_exec(command)
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return True

    def eof_received(self) -> bool:
        return True  # keep writing to the user after their stdin ends (ssh -n)


class TunnelServer(asyncssh.SSHServer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.server = gateway.server
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = ""
        self.key_user: str | None = None  # the comment of the authorized key that matched
        self.auth_errors: list[str] = []  # x/crypto ServerAuthError: one text per failed attempt
        self.authed = False
        self.first_channel: asyncssh.SSHServerChannel[bytes] | None = None
        self.forward: tuple[str, int] | None = None
        self.payload = ""
        self._ready = asyncio.Event()
        self.vc: VirtualClient | None = None
        self.task: asyncio.Task[None] | None = None
        self.relays: set[Relay] = set()
        self.proxy_name = ""

    # -- connection and authentication ----------------------------------------------------------

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.peer = fmt_addr(conn.get_extra_info("peername"))
        self.gateway.tunnels.add(self)

    def begin_auth(self, username: str) -> bool:
        required = bool(self.gateway.cfg.authorized_keys_file)  # Go: NoClientAuth when it is empty
        if required:  # the client's first request (method "none") failed: x/crypto's ErrNoAuth
            self.auth_errors.append("ssh: no auth passed yet")
        return required

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        try:
            keys = self.gateway.authorized_keys()
        except (OSError, ValueError) as exc:
            log.error("load authorized keys file error: %s", exc)
            self.auth_errors.append("internal error")
            return False
        user = keys.get(key.public_data)
        if user is None:
            self.auth_errors.append(f'unknown public key for remoteAddr "{self.peer}"')
            return False
        self.key_user = user
        return True

    def auth_completed(self) -> None:
        self.authed = True
        self.task = asyncio.ensure_future(self.run())
        self.task.add_done_callback(self._run_done)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway.tunnels.discard(self)
        if not self.authed:
            if isinstance(exc, asyncssh.ConnectionLost) and "Login timeout" in str(exc):
                reason = (f"ssh handshake with {self.peer} not finished within "
                          f"{self.gateway.handshake_timeout:g}s, closed")
            elif self.auth_errors:  # x/crypto's ServerAuthError: the client gave up after failed attempts
                reason = f"[{', '.join(self.auth_errors)}]"
            else:
                reason = f"ssh handshake with {self.peer} failed: {exc or 'connection closed'}"
            log.error("ssh tunnel server run error: %s", reason)
        for relay in list(self.relays):
            relay.close()
        if self.vc is not None:
            self.vc.close()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    # -- the -R forward and the command ---------------------------------------------------------

    def server_requested(self, listen_host: str, listen_port: int) -> asyncssh.SSHListener:
        """Go takes the first tcpip-forward and accepts every one, without listening anywhere:
        frps's proxy is the listener. (Returning True would make asyncssh open a real listener
        on the frps host at the address the ssh user names.)"""
        listener = _NoListener(listen_port or NOMINAL_PORT)
        if self.forward is None:
            self.forward = (listen_host, listener.get_port())
            self._check_ready()
        return listener

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        return _Session(self)

    def got_exec(self, payload: str) -> None:
        if payload and not self.payload:
            self.payload = payload
            self._check_ready()

    def _check_ready(self) -> None:
        if self.forward is not None and self.payload:
            self._ready.set()

    def write(self, text: str) -> None:
        """Go ``writeToClient``: the text and a newline on the first session channel."""
        chan = self.first_channel
        if chan is not None and not chan.is_closing():
            chan.write((text + "\n").encode())

    def close(self) -> None:
        """Go closes the TCP connection (``sshConn.Close()``) without an SSH disconnect message,
        so the user's ssh says "Connection to ... closed by remote host."; the raw transport is
        closed after what was written to the user is flushed."""
        conn = self.conn
        if conn is None:
            return
        raw = getattr(conn, "_transport", None)  # asyncssh has no public close without DISCONNECT
        if raw is not None and hasattr(raw, "close"):
            raw.close()
        else:
            conn.close()

    # -- the tunnel -----------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with asyncio.timeout(FORWARD_TIMEOUT):
                await self._ready.wait()
        except TimeoutError:
            log.error("ssh tunnel server run error: get addr and extra payload timeout")
            self.close()
            return
        try:
            cmd = command.parse(self.payload)
        except command.HelpRequested as exc:
            self.write(exc.usage)
            self.close()
            return
        except command.CommandError as exc:
            self.write(str(exc))
            log.error("ssh tunnel server run error: parse flags from ssh client error: %s", exc)
            self.close()
            return
        user = self.key_user or cmd.user  # Go: the authorized key's comment wins over --user
        req = cmd.new_proxy(user)
        self.proxy_name = req.proxy_name
        self.vc = VirtualClient(
            self.server, self.peer, token=cmd.token, always_auth_pass=bool(self.gateway.cfg.authorized_keys_file),
            on_work_conn=self._on_work_conn,
        )
        try:
            remote_addr = await self.vc.start(user, req)
        except VirtualClientError as exc:
            self.write(str(exc))
            log.warning("wait proxy status ready error: %s", exc.log_text)
            self.vc.close()
            self.close()
            return
        self.write(success_info(user, req.proxy_name, cmd.proxy_type, remote_addr))
        conn = self.conn
        assert conn is not None
        closed = asyncio.ensure_future(conn.wait_closed())
        try:
            await asyncio.wait([closed, self.vc.closed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            self.vc.close()
            self.close()
        log.debug("ssh tunnel connection from %s closed", self.peer)

    def _run_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("ssh tunnel: internal error: %r", task.exception(), exc_info=task.exception())
            self.close()

    async def _on_work_conn(self, work: MsgConn) -> None:
        """Go ``HandleWorkConnCb``: open a forwarded-tcpip channel and join it with the work conn."""
        conn, forward = self.conn, self.forward
        assert conn is not None and forward is not None
        host, port = forward
        try:
            _, tcp_session = await conn.create_connection(ChannelSession, host, port, host, port)
        except (asyncssh.Error, OSError) as exc:
            log.debug("open conn error: open ssh channel error: %s", exc)
            work.close()
            return
        session = tcp_session
        assert isinstance(session, ChannelSession) and session.transport is not None
        transport, data, eof = work.detach()
        pending = session.pending
        relay = Relay(
            session.transport, transport, a_data=pending.take(), a_eof=pending.eof, b_data=data, b_eof=eof,
            name=self.proxy_name, on_close=self.relays.discard,
        )
        if not relay.done.done():
            self.relays.add(relay)
