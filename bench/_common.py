"""Plumbing shared by the bench scripts: the import path to tests/support, the frps/frpc commands
of an implementation, a proxy setup's processes and their CPU time, number formatting.

Importing this module puts ``tests/`` on ``sys.path`` (the bench scripts use tests/support).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from support.gofrp import go_binaries
from support.procs import FrpProcess, ours_cmd


def frp_commands(impl: str) -> tuple[list[str], list[str]]:
    """(frps command, frpc command) of ``impl``: ``"go"`` (Go frp binaries) or ours."""
    if impl == "go":
        frps_bin, frpc_bin = go_binaries()
        return [str(frps_bin)], [str(frpc_bin)]
    return ours_cmd("frps"), ours_cmd("frpc")


@dataclass
class Setup:
    config: Any  # what was set up (a variant or a configuration name)
    port: int  # where the bench client connects
    procs: list[FrpProcess] = field(default_factory=list)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]


def cpu_seconds(pgids: list[int]) -> float | None:
    """CPU time (utime+stime, plus that of reaped children) of every process in the given process
    groups, from /proc (Linux); None if unavailable.  Each frps/frpc runs in its own group, so
    helper processes or threads an implementation might use are counted too."""
    wanted = set(pgids)
    total = 0
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for pid in entries:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if int(fields[2]) in wanted:  # pgrp
            total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def teardown(setups: dict[Any, Setup], workdir: str | os.PathLike[str], keep_logs: bool) -> None:
    """Kill every setup's processes; remove the configs and logs unless ``keep_logs``."""
    for setup in setups.values():
        for p in setup.procs:
            p.kill()
    if keep_logs:
        print(f"configs and logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def fmt(x: float | None, width: int = 9, prec: int = 1) -> str:
    return f"{x:{width}.{prec}f}" if x is not None else f"{'-':>{width}}"
