"""Bulk echo through the SSH tunnel gateway, Go frps 0.65 and ours side by side.

For each implementation: frps with ``sshTunnelGateway`` (an ed25519 host key), the OpenSSH client
running ``ssh -R :80:127.0.0.1:ECHO v0@127.0.0.1 -p PORT tcp -r REMOTE``, then ``--rounds``
transfers of ``--size`` bytes written to REMOTE while the echo comes back. Printed per round:
wall-clock MB/s per direction and the CPU seconds frps spent (from /proc), which is what to
compare on a shared machine (the wall clock moves with the load; the ssh client's ciphers, the
echo service and this script share the CPU too).

    .venv/bin/python bench/ssh_gateway.py --size 32M --rounds 3
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common  # noqa: F401 - puts tests/ on sys.path
from support.ports import free_port
from support.processes import FrpProcess, go_cmd, ours_cmd
from support.services import EchoServer
from support.ssh import SSHTunnel, keygen


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def echo_transfer(port: int, size: int) -> float:
    """Write ``size`` bytes and read the echo back at the same time; seconds taken."""
    block = os.urandom(1 << 20)
    with socket.create_connection(("127.0.0.1", port)) as s:
        def writer() -> None:
            left = size
            while left > 0:
                n = min(left, len(block))
                s.sendall(block[:n])
                left -= n

        t0 = time.monotonic()
        th = threading.Thread(target=writer)
        th.start()
        got = 0
        while got < size:
            chunk = s.recv(1 << 18)
            if not chunk:
                raise RuntimeError(f"echo ended after {got} of {size} bytes")
            got += len(chunk)
        th.join()
        return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="32M")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--impls", default="go,ours")
    args = ap.parse_args()
    size = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="aiofrp-bench-ssh-"))
    key = keygen(work, "user")
    keygen(work, "host_key")
    with EchoServer() as echo:
        for impl in args.impls.split(","):
            ssh_port, remote = free_port(), free_port()
            conf = (f'bindAddr = "127.0.0.1"\nbindPort = {free_port()}\nsshTunnelGateway.bindPort = {ssh_port}\n'
                    f'sshTunnelGateway.privateKeyFile = "{work / "host_key"}"\n')
            frps = FrpProcess(go_cmd("frps") if impl == "go" else ours_cmd("frps"), conf, name=f"frps-{impl}",
                              workdir=work).start()
            try:
                frps.wait_for_log(r"frps started successfully", 60)
                with SSHTunnel(work, ssh_port, key, f"tcp -r {remote}", echo.port) as ssh:
                    ssh.wait_output("\n\n", 30)
                    for _ in range(args.rounds):
                        assert frps.pid is not None
                        c0 = cpu_seconds(frps.pid)
                        dt = echo_transfer(remote, size)
                        cpu = cpu_seconds(frps.pid) - c0
                        print(f"{impl:5} {size >> 20} MiB echoed: {size / dt / 1e6:6.1f} MB/s per direction, "
                              f"frps CPU {cpu:.2f} s", flush=True)
            finally:
                frps.kill()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
