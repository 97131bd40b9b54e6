"""Command lines that Go's frpc and frps refuse, run through both: same exit status, Go's words.

Each case is refused before anything is started or connected (nothing listens, nothing dials), so
both binaries return at once. Go (cobra) prints usage errors on stderr and its validation errors
on stdout; ours prints both on stderr (README "Deliberate differences"), so the texts are looked
for in either stream.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from support.procs import go_cmd, ours_cmd

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
