"""``frps --workers N``: N processes serve one frps (docs/architecture.md, "Workers").

* :mod:`.supervisor`: the parent process; checks the config, starts the workers, restarts them,
  runs the registry;
* :mod:`.registry`: the names every process shares (run ids, proxy names, groups);
* :mod:`.worker`: what a worker adds to the one-process frps (SO_REUSEPORT on the bind port,
  the remote registry, ``@wN`` after the component of its log lines).

What is not shared between processes yet is refused at start-up (:data:`NOT_SHARED`), never
served half-way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...config.server import ServerConfig

__all__ = ["NOT_SHARED", "refusal"]

NOT_SHARED: dict[str, tuple[Callable[[ServerConfig], bool], str]] = {
    # key: (set in this config?, why it needs one process). Empty: every key works with N
    # workers. The last one, ``transport.tcpMux = false``, works since a work connection that
    # reaches another worker than its client's control is handed or relayed there
    # (server/service.py: Server.relay_work_conn).
}
"""The keys frps --workers N > 1 refuses, with the reason (a registry, not an if-chain)."""


def refusal(cfg: ServerConfig, workers: int) -> tuple[str, str] | None:
    """``(key, why)`` of the first key that does not work with ``workers`` processes, else None."""
    if workers <= 1:
        return None
    for key, (is_set, why) in NOT_SHARED.items():
        if is_set(cfg):
            return key, why
    return None
