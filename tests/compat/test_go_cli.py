"""Command lines that Go's frpc and frps refuse, run through both: same exit status, Go's words.

Each case is refused before anything is started or connected (nothing listens, nothing dials), so
both binaries return at once. Go (cobra) prints usage errors on stderr and its validation errors
on stdout; ours prints both on stderr (README "Deliberate differences"), so the texts are looked
for in either stream.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest
from support.procs import LOCALHOST, free_port, go_cmd, ours_cmd

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


# (which, argv, a text both print, or "" when only the exit status is compared)
REFUSED = [
    ("frps", ["--foo"], ""),
    ("frpc", ["--foo"], ""),
    ("frpc", ["version"], ""),
    ("frps", ["-p", "abc"], ""),
    ("frpc", ["tcp", "-n", "t", "-r", "abc"], ""),
    ("frpc", ["tcp", "-n", "t", "--tls-enable=maybe"], ""),
    ("frpc", ["tcp", "-l", "22", "-r", "6000"], "name should not be empty"),
    ("frpc", ["http", "-l", "80", "-d", "a.example.com"], "name should not be empty"),
    ("frpc", ["stcp", "visitor", "--server-name", "s", "--sk", "k"], "name is required"),
    ("frpc", ["tcpmux", "-n", "m", "-d", "m.example.com", "-l", "80"], "not support multiplexer"),
]


@pytest.mark.parametrize(("which", "argv", "text"), REFUSED, ids=[" ".join([w, *a]) for w, a, _ in REFUSED])
def test_refused_as_go_refuses(which: str, argv: list[str], text: str) -> None:
    go = run(go_cmd(which) + argv)
    ours = run(ours_cmd(which) + argv)
    assert go.returncode == 1, go
    assert ours.returncode == 1, ours
    if text:
        assert text in go.stdout + go.stderr, go
        assert text in ours.stderr, ours
    assert "Traceback" not in ours.stderr


def test_listener_in_use_named_as_go_names_it(tmp_path) -> None:
    """A port frps needs is taken: both exit 1 with Go's text naming the listener and the address."""
    taken = socket.socket()
    taken.bind((LOCALHOST, 0))
    taken.listen()
    busy = taken.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((LOCALHOST, 0))
    ubusy = udp.getsockname()[1]
    free = free_port()
    cases = [
        (["-p", str(busy)], f"create server listener error, listen tcp {LOCALHOST}:{busy}: bind: address already in use"),
        (["-p", str(free), "--vhost-http-port", str(busy)],
         f"create vhost http listener error, listen tcp 0.0.0.0:{busy}: bind: address already in use"),
        (["-p", str(free), "--dashboard-addr", LOCALHOST, "--dashboard-port", str(busy)],
         f"listen tcp {LOCALHOST}:{busy}: bind: address already in use"),
        (["-p", str(free), "--kcp-bind-port", str(ubusy)],
         (f"listen on kcp udp address {LOCALHOST}:{ubusy} error: listen udp {LOCALHOST}:{ubusy}: bind: address "
          "already in use")),
    ]
    try:
        for argv, text in cases:
            argv = ["--bind-addr", LOCALHOST, *argv]
            go, ours = run(go_cmd("frps") + argv), run(ours_cmd("frps") + argv)
            assert go.returncode == ours.returncode == 1, (go, ours)
            assert text in go.stdout, go
            assert text in ours.stdout + ours.stderr, ours
    finally:
        taken.close()
        udp.close()


def test_bool_flag_takes_no_separate_value(tmp_path) -> None:
    """`--strict-config false` is the flag (on) and a word, as Go's pflag reads it: the unknown
    key still fails the check; `--strict-config=false` turns it off."""
    conf = tmp_path / "unk.toml"
    conf.write_text("serverPortt = 7000\n")
    for argv, rc in ((["--strict-config", "false"], 1), (["--strict-config=false"], 0)):
        go = run(go_cmd("frpc") + ["verify", "-c", str(conf), *argv])
        ours = run(ours_cmd("frpc") + ["verify", "-c", str(conf), *argv])
        assert go.returncode == ours.returncode == rc, (go, ours)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def stdout_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in ANSI.sub("", proc.stdout).splitlines() if line]


def test_legacy_ini_notice_as_go_prints_it(tmp_path) -> None:
    """A legacy INI file: before running it both print Go's notice as their first stdout line; verify
    prints the same stdout as Go (no notice). Our conversion hint goes to stderr only."""
    taken = socket.socket()
    taken.bind((LOCALHOST, 0))
    taken.listen()
    busy = taken.getsockname()[1]
    frps_ini = tmp_path / "frps.ini"
    frps_ini.write_text(f"[common]\nbind_addr = {LOCALHOST}\nbind_port = {busy}\n")
    frpc_ini = tmp_path / "frpc.ini"
    frpc_ini.write_text(f"[common]\nserver_addr = {LOCALHOST}\nserver_port = {free_port()}\nlogin_fail_exit = true\n")
    notice = ("WARNING: ini format is deprecated and the support will be removed in the future, please use "
              "yaml/json/toml format instead!")
    try:
        for which, path in (("frps", frps_ini), ("frpc", frpc_ini)):
            go, ours = run(go_cmd(which) + ["-c", str(path)]), run(ours_cmd(which) + ["-c", str(path)])
            assert go.returncode == ours.returncode == 1, (go, ours)  # port taken / nothing listening
            assert stdout_lines(go)[0] == notice, go
            assert stdout_lines(ours)[0] == notice, ours
            assert "convert" in ours.stderr and "Traceback" not in ours.stderr
            go, ours = run(go_cmd(which) + ["verify", "-c", str(path)]), run(ours_cmd(which) + ["verify", "-c", str(path)])
            assert go.returncode == ours.returncode == 0, (go, ours)
            assert ours.stdout == go.stdout == f"{which}: the configuration file {path} syntax is ok\n"
    finally:
        taken.close()


def test_login_fail_exit_ends_as_go_ends(tmp_path) -> None:
    """loginFailExit (the default) and no frps: both log that the service stopped, then print the
    error bare as the last stdout line, and exit 1."""
    port = free_port()
    cfg = tmp_path / "frpc.toml"
    cfg.write_text(f'serverAddr = "{LOCALHOST}"\nserverPort = {port}\n')
    go, ours = run(go_cmd("frpc") + ["-c", str(cfg)]), run(ours_cmd("frpc") + ["-c", str(cfg)])
    assert go.returncode == ours.returncode == 1, (go, ours)
    for proc in (go, ours):
        *_, stopped, last = stdout_lines(proc)
        assert stopped.endswith(f"frpc service for config file [{cfg}] stopped"), proc
        assert last.startswith(f"login to the server failed: dial tcp {LOCALHOST}:{port}: connect: connection "
                               "refused"), proc
        assert last.endswith(". With loginFailExit enabled, no additional retries will be attempted"), proc
    assert "Traceback" not in ours.stderr
