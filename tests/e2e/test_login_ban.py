"""aiofrp's per-address ban of failed bind-port connections (``frps --login-fail-limit N
--login-fail-window W --login-fail-ban B`` beside ``-c``), on a real frps process.

N wrong-token logins from 127.0.0.1 ban it: its next connections are closed at accept without a
byte read, one ban line is logged for them all, ::1 is not affected, and when the ban is over
127.0.0.1 is served again (a real frpc logs in from there).
"""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
from support.hostile import in_stream, login_msg
from support.procs import LOCALHOST, free_port, frpc_config, frps_config, ours_cmd, tcp_proxy
from support.waits import echo_ok, poll

pytestmark = pytest.mark.timeout(120)

TOKEN = "ban-token"
LIMIT, BAN = 3, 4.0


def wrong_login(host: str, port: int) -> bytes:
    """A wrong-token Login; what frps answered before closing the connection."""
    got = b""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(in_stream(login_msg()))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    return got


def closed_at_accept(host: str, port: int) -> bool:
    """True if frps closes a fresh connection before it sends anything (an unbanned one would be
    kept for the 10 s login deadline)."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.settimeout(3)
        try:
            return s.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def test_wrong_logins_ban_the_address_then_the_ban_expires(frp, echo_server) -> None:
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, bindAddr="::"),
                         args=["--login-fail-limit", str(LIMIT), "--login-fail-window", "60s",
                               "--login-fail-ban", f"{BAN:g}s"])
    frps.wait_for_log(r"frps started successfully", 10)
    assert "login failures limited: 3 per address within 60s ban it for 4s" in frps.log_text()

    for _ in range(LIMIT):
        assert b"doesn't match" in wrong_login(LOCALHOST, bind)
    frps.wait_for_log(r"\[W\] \[server\] address 127\.0\.0\.1 banned for 4s: 3 failed connections within 60s", 5)
    banned_at = time.monotonic()
    for _ in range(5):  # refused at once, however many times it tries, with no more lines
        assert closed_at_accept(LOCALHOST, bind)
    assert wrong_login(LOCALHOST, bind) == b""  # not even a refusal is sent
    # another address is served meanwhile
    assert b"doesn't match" in wrong_login("::1", bind)
    assert time.monotonic() - banned_at < BAN, "the machine is too slow for this ban period"
    log = frps.log_text()
    assert log.count("banned for") == 1, log
    assert log.count("login from 127.0.0.1:") == LIMIT, log  # banned connections cost no line

    # the ban expires: a real frpc logs in from 127.0.0.1 and its tunnel works
    remote = free_port()
    frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("t", echo_server.port, remote), token=TOKEN))
    frpc.wait_login(BAN + 15)
    poll(lambda: echo_ok(remote), 10, "the tunnel after the ban")
    assert "address 127.0.0.1 no longer banned" in frps.log_text()
    assert frps.log_text().count("banned for") == 1


def test_flags_are_allowed_beside_c_and_checked(tmp_path) -> None:
    conf = tmp_path / "frps.toml"
    conf.write_text(frps_config(free_port(), token=TOKEN))
    bad = subprocess.run([*ours_cmd("frps"), "-c", str(conf), "--login-fail-ban", "5x"],
                         check=False, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "--login-fail-ban: invalid duration '5x'" in bad.stderr, bad.stderr
    ok = subprocess.run([*ours_cmd("frps"), "verify", "-c", str(conf), "--login-fail-limit", "5"],
                        check=False, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
