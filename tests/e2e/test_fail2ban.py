"""The README's fail2ban filter, run by Debian's real ``fail2ban-regex`` over a real frps log file.

Wrong-token logins (over IPv4 and IPv6) and garbage must be matched with the client's address;
a peer that just hangs up, a successful login and a client trying to forge a line through its
``hostname`` (in the line itself, and with a line break) must not be.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from collections import Counter
from pathlib import Path

import pytest
from support.fail2ban import Fail2banUnavailable, fail2ban_regex, fail2ban_root
from support.hostile import frp_msg, in_stream, login_msg
from support.procs import LOCALHOST, free_port, frps_config, wait_port

pytestmark = pytest.mark.timeout(300)

TOKEN = "fail2ban-token"
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_filter() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"```ini\n(\[Definition\]\nfailregex = .*?)```", text, re.DOTALL)
    assert m, "README has no fail2ban filter block"
    return m.group(1)


def talk(host: str, port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send ``payload`` and read until frps closes the connection."""
    got = b""
    with socket.create_connection((host, port), timeout=timeout) as s:
        if payload:
            s.sendall(payload)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    return got


def valid_login(hostname: str) -> bytes:
    ts = int(time.time())
    key = hashlib.md5(f"{TOKEN}{ts}".encode()).hexdigest()
    return in_stream(frp_msg(b"o", {"version": "0.65.0", "hostname": hostname, "os": "linux", "arch": "amd64",
                                    "user": "", "privilege_key": key, "timestamp": ts, "run_id": "",
                                    "metas": {}, "pool_count": 0}))


def test_readme_fail2ban_filter_matches_real_frps_log(frp, tmp_path: Path) -> None:
    try:
        fail2ban_root()
    except Fail2banUnavailable as e:
        pytest.fail(f"cannot provide fail2ban-regex: {e}", pytrace=False)
    log_file = tmp_path / "frps.log"
    bind = free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, bindAddr="::", **{"log.to": str(log_file)}))
    wait_port(bind, 10)

    for _ in range(3):
        assert b"doesn't match" in talk(LOCALHOST, bind, in_stream(login_msg()))
    for _ in range(2):
        assert b"doesn't match" in talk("::1", bind, in_stream(login_msg()))
    talk(LOCALHOST, bind, b"\xa5" * 64)  # garbage
    talk(LOCALHOST, bind, b"", timeout=0.2)  # connect, hang up: a "closed" line
    # a client with the token tries to get 6.6.6.6 and 7.7.7.7 banned through its hostname
    forged = ["x] login from 6.6.6.6:1 failed: y",
              "x\n2026-01-01 00:00:00.000 [W] [server] login from 7.7.7.7:1 failed: y"]
    for name in forged:
        with socket.create_connection((LOCALHOST, bind), timeout=5) as s:
            s.sendall(valid_login(name))
            got, deadline = b"", time.monotonic() + 5
            while b'"run_id"' not in got and time.monotonic() < deadline:  # yamux frames may come apart
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            assert b'"run_id"' in got

    def logged() -> str:
        return log_file.read_text(encoding="utf-8") if log_file.exists() else ""

    deadline = time.monotonic() + 10
    while logged().count(" failed: ") < 6 or logged().count("closed by the peer") < 1 \
            or logged().count("client login info") < 2:
        assert time.monotonic() < deadline, f"frps log incomplete:\n{logged()}"
        time.sleep(0.1)
    assert "7.7.7.7" in logged() and "\n2026-01-01" not in logged()  # the line break was escaped

    filt = tmp_path / "frps-filter.conf"
    filt.write_text(readme_filter(), encoding="utf-8")
    res = fail2ban_regex(log_file, filt, "-o", "ip")
    assert res.returncode == 0, res.stderr
    ips = Counter(line.strip() for line in res.stdout.splitlines() if line.strip())
    assert ips == Counter({LOCALHOST: 4, "::1": 2}), f"{ips}\n{res.stderr}\nlog:\n{logged()}"
    assert frps.running
