"""The prefixes of log lines, as Go frp 0.65.0's ``xlog`` writes them, in every pairing of Go's and
our frps and frpc.

Go logs a client's control through an ``xlog`` whose prefix is ``[RUNID] `` from the login on
(frpc: the service, its control, the proxy and visitor managers; frps: the client's control) and a
proxy's or a visitor's with ``[RUNID] [NAME] `` (frpc's proxies, their work connections and health
checks, its visitors; frps's proxies and their user connections). What comes before the login has
none. The lines' other fields differ on purpose (Go prints ``[file.go:NN]`` where ours prints
``[component]``) and are dropped with the timestamp and the level; run ids become ``RUNID``.

One run per pairing: a tcp proxy, an stcp proxy and an stcp visitor, a user connection through the
tcp proxy, then frpc stops. For each key message the set of prefixes of its lines must be the one
Go's own pair writes (the table below, which the go/go run checks against Go itself).
"""

from __future__ import annotations

import re
import socket

import pytest
from support.procs import (
    LOCALHOST,
    PAIRINGS,
    TEST_STRING,
    FrpProcess,
    block,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

TOKEN = "log-prefix-token"
SK = "log-prefix-sk"

# a line: date, time, level, then Go's [file.go:NN] or our [component], then the message
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[[TDIWE]\] \[[^\]]*\] (?P<msg>.*)$")
RUN_ID = re.compile(r"login to server success, get run id \[([^\]]+)\]")

R = "[RUNID] "
# key message (a regex on the message) -> the prefixes of its lines, as Go 0.65 writes them
FRPC_KEYS: dict[str, set[str]] = {
    r"try to connect to server\.\.\.$": {""},  # before the login: none
    r"login to server success, get run id \[RUNID\]$": {R},
    r"proxy added: \[": {R},
    r"start visitor success$": {R},
    r"visitor added: \[v1\]$": {R},
    r"start proxy success$": {R + "[t1] ", R + "[s1] "},
}
FRPS_KEYS: dict[str, set[str]] = {
    r"tcp proxy listen port \[\d+\]$": {R + "[t1] "},
    r"stcp proxy custom listen success$": {R + "[s1] "},
    r"new proxy \[t1\] type \[tcp\] success$": {R},
    r"new proxy \[s1\] type \[stcp\] success$": {R},
    r"get a user connection \[127\.0\.0\.1:\d+\]$": {R + "[t1] "},
    r"proxy closing$": {R + "[t1] ", R + "[s1] "},
    r"client exit success$": {R},
}


def messages(proc: FrpProcess, run_id: str) -> list[str]:
    """The messages of ``proc``'s log (the fields before them dropped), run ids as ``RUNID``."""
    out = []
    for line in proc.log_text().splitlines():
        m = LINE.match(line)
        if m:
            out.append(m["msg"].replace(run_id, "RUNID"))
    return out


def prefixes(msgs: list[str], keys: dict[str, set[str]]) -> dict[str, set[str]]:
    """For each key, the set of what comes before it in the messages it is found in."""
    found: dict[str, set[str]] = {}
    for key in keys:
        rx = re.compile(key)
        found[key] = {msg[:m.start()] for msg in msgs if (m := rx.search(msg))}
    return found


@pytest.mark.parametrize(("frps_impl", "frpc_impl"), PAIRINGS)
def test_log_prefixes_as_gos(frp, echo_server, frps_impl: str, frpc_impl: str) -> None:
    bind, remote, vport = free_port(), free_port(), free_port()
    frps = frp.start(frps_impl, "frps", frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 15)
    frpc = frp.start(frpc_impl, "frpc", frpc_config(
        bind,
        tcp_proxy("t1", echo_server.port, remote),
        block("proxies", name="s1", type="stcp", secretKey=SK, localIP=LOCALHOST, localPort=echo_server.port),
        block("visitors", name="v1", type="stcp", serverName="s1", secretKey=SK, bindAddr=LOCALHOST,
              bindPort=vport),
        token=TOKEN,
    ))
    run_id = frpc.wait_login(15)
    frpc.wait_for_proxies("t1", "s1", timeout=15)
    frpc.wait_for_log(r"visitor added: \[v1\]$", 10)

    with socket.create_connection((LOCALHOST, remote), timeout=10) as s:
        s.settimeout(10)
        s.sendall(TEST_STRING)
        got = b""
        while len(got) < len(TEST_STRING) and (chunk := s.recv(4096)):
            got += chunk
    assert got == TEST_STRING
    frps.wait_for_log(r"\[t1\] get a user connection \[", 10)

    frpc.stop()
    frps.wait_for_log(r"client exit success$", 15)

    impl = f"{frps_impl} frps, {frpc_impl} frpc"
    assert prefixes(messages(frpc, run_id), FRPC_KEYS) == FRPC_KEYS, impl
    assert prefixes(messages(frps, run_id), FRPS_KEYS) == FRPS_KEYS, impl


def test_xlog_prefixes_are_literal_and_shared_by_views() -> None:
    """A name with ``%`` (frps takes proxy names and run ids from its clients) is printed as it is,
    with or without arguments; a view on another logger follows ``set``; nothing is formatted for a
    disabled level."""
    import logging

    from aiofrp.log import XLog

    seen: list[tuple[str, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.name, record.getMessage()))

    base, other = logging.getLogger("aiofrp.test.xlog"), logging.getLogger("aiofrp.test.xlog.other")
    handler = Keep()
    base.addHandler(handler)
    old = base.level
    base.setLevel(logging.INFO)
    try:
        xl = XLog(base, "%s%d", "n")
        view = xl.on(other)
        xl.info("a %s", "b")
        xl.info("100%")
        xl.debug("not %s", "seen")
        xl.set("RUN", "n")
        view.warning("w %d", 1)
        xl.child("sub").info("c")
        XLog(base).info("bare")
    finally:
        base.removeHandler(handler)
        base.setLevel(old)
    assert seen == [
        ("aiofrp.test.xlog", "[%s%d] [n] a b"),
        ("aiofrp.test.xlog", "[%s%d] [n] 100%"),
        ("aiofrp.test.xlog.other", "[RUN] [n] w 1"),
        ("aiofrp.test.xlog", "[RUN] [n] [sub] c"),
        ("aiofrp.test.xlog", "bare"),
    ]
