"""Helpers of the fault tests (tests/e2e/test_faults.py, tests/compat/test_go_faults.py): a user
connection moving data through a tunnel until something closes it under it, and the checks that
follow a fault."""

from __future__ import annotations

import os
import socket
import threading

from .ports import LOCALHOST
from .processes import FrpProcess
from .waits import poll

__all__ = ["BACK_WITHIN", "Streamer", "mid_transfer", "no_stale_proxy"]

BACK_WITHIN = 10.0  # the promise: the tunnel is back within 10 s


class Streamer(threading.Thread):
    """A user connection moving data through the tunnel (echoed) until it is closed under it."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection((LOCALHOST, port), timeout=5)
        self.sock.settimeout(30)  # a connection nobody closes would fail the test, not hang it
        self.echoed = 0
        self.ended: str | None = None
        self.start()

    def run(self) -> None:
        block = os.urandom(16384)
        try:
            while True:
                self.sock.sendall(block)
                got = 0
                while got < len(block):
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        self.ended = "EOF"
                        return
                    got += len(chunk)
                    self.echoed += len(chunk)
        except OSError as exc:
            self.ended = type(exc).__name__
        finally:
            self.sock.close()


def mid_transfer(remote: int) -> Streamer:
    s = Streamer(remote)
    poll(lambda: s.echoed >= 1 << 20 or s.ended, 20, "1 MiB echoed through the tunnel")
    assert s.ended is None, f"the transfer ended before the fault: {s.ended}"
    return s


def no_stale_proxy(*procs: FrpProcess) -> None:
    for p in procs:
        assert "already exists" not in p.log_text(), p.log_tail()
