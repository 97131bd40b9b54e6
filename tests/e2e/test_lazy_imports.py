"""What an idle frps/frpc has loaded: the optional libraries stay out of a plain tcp setup.

Memory is most of what an idle Python frp costs (docs/performance.md, ## Memory): aiohttp, qh3,
PyYAML, asyncssh, hpack, websockets, PyJWT, prometheus-client, cramjam, dnspython ... are imported only
by the features that need them (registry.py imports a proxy type's module when a config first uses
it). Here a real frps and a real frpc (our CLIs, each in a wrapper that dumps ``sys.modules`` when
told on stdin) run a tcp proxy and carry one connection; then both list what they imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    EchoServer,
    free_port,
    frpc_config,
    frps_config,
    tcp_roundtrip,
)
from support.waits import poll

# The main(argv) of our CLI in a process that writes sorted(sys.modules) as JSON to $DUMP and exits
# when a line arrives on stdin (a thread waits for it; the CLI runs as usual meanwhile).
WRAPPER = """
import json, os, sys, threading
from aiofrp.cli import {which} as cli

def dump():
    sys.stdin.readline()
    with open(os.environ["DUMP"], "w") as f:
        json.dump(sorted(sys.modules), f)
    os._exit(0)

threading.Thread(target=dump, daemon=True).start()
sys.exit(cli.main(sys.argv[1:]))
"""

# Optional third-party libraries, and our own modules of features the config does not use.
NOT_LOADED = (
    "aiohttp", "qh3", "aioquic", "yaml", "asyncssh", "h2", "hpack", "websockets", "jwt", "prometheus_client",
    "cramjam", "google_crc32c", "dns", "python_socks", "aiohttp_socks", "nacl", "cryptography",
    "aiofrp.config.ini", "aiofrp.config.convert",
    # the standard library's too (docs/performance.md, "### Fewer imports, malloc_trim"): argparse
    # would import shutil (with bz2, lzma) for the terminal width, frps's certificate tempfile;
    # random only for a login retry's jitter and NAT hole punching; urllib.parse and ipaddress for
    # the URLs and addresses of features that are off (proxyURL, dnsServer, OIDC, the PROXY protocol, ...)
    "shutil", "bz2", "lzma", "tempfile", "random", "urllib.parse", "ipaddress",
)
CLIENT_NOT_LOADED = (
    "aiofrp.client.proxies.xtcp", "aiofrp.client.proxies.udp", "aiofrp.client.proxies.sudp",
    "aiofrp.client.visitors.xtcp", "aiofrp.client.tunnel", "aiofrp.net.kcp", "aiofrp.net.quic",
    "aiofrp.client.plugins.http_proxy", "aiofrp.client.plugins.socks5", "aiofrp.client.admin",
)
SERVER_NOT_LOADED = (
    "aiofrp.server.proxies.http", "aiofrp.server.proxies.xtcp", "aiofrp.server.proxies.udp",
    "aiofrp.server.dashboard", "aiofrp.server.metrics", "aiofrp.server.sshgw", "aiofrp.server.vhost.http",
    "aiofrp.server.vhost.https", "aiofrp.server.vhost.tcpmux",
    "aiofrp.server.nathole", "aiofrp.proto.nathole",  # xtcp's controller: made with the first xtcp message
)


class Wrapped:
    def __init__(self, which: str, config: str, tmp: Path) -> None:
        self.dump = tmp / f"{which}.modules.json"
        self.log = tmp / f"{which}.log"
        cfg = tmp / f"{which}.toml"
        cfg.write_text(config)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", WRAPPER.format(which=which), "-c", str(cfg)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "DUMP": str(self.dump), "PYTHONUNBUFFERED": "1"},
            )

    def logged(self, text: str) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"exited with {self.proc.returncode}:\n{self.log.read_text()}")
        return text in self.log.read_text()

    def modules(self) -> set[str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"dump\n")
        self.proc.stdin.flush()
        assert self.proc.wait(timeout=20) == 0, self.log.read_text()
        return set(json.loads(self.dump.read_text()))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


def test_plain_tcp_frps_and_frpc_leave_the_optional_libraries_unimported(tmp_path: Path) -> None:
    bind, remote = free_port(), free_port()
    with EchoServer() as echo:
        frps = Wrapped("frps", frps_config(bind, token="lazy"), tmp_path)
        frpc = None
        try:
            poll(lambda: frps.logged("frps started successfully"), 30, "frps start")
            proxy = f'[[proxies]]\nname = "t"\ntype = "tcp"\nlocalIP = "{LOCALHOST}"\n' \
                    f"localPort = {echo.port}\nremotePort = {remote}\n"
            frpc = Wrapped("frpc", frpc_config(bind, token="lazy", extra=proxy), tmp_path)
            poll(lambda: frpc.logged("[t] start proxy success"), 30, "proxy start")
            assert tcp_roundtrip(remote, TEST_STRING) == TEST_STRING  # a work connection, relayed
            client, server = frpc.modules(), frps.modules()
        finally:
            for p in (frpc, frps):
                if p is not None:
                    p.kill()
    # the check is meaningful: the modules the tcp path does use are there
    assert {"aiofrp.client.proxies.general_tcp", "aiofrp.net.relay", "aiofrp.proto.crypto"} <= client
    assert {"aiofrp.server.proxies.tcp", "aiofrp.net.relay"} <= server
    assert _loaded(client, NOT_LOADED + CLIENT_NOT_LOADED) == []
    assert _loaded(server, NOT_LOADED + SERVER_NOT_LOADED) == []
