"""One worker process of ``frps --workers N`` (started by the supervisor with ``--worker I
--registry PATH``): the one-process frps with SO_REUSEPORT on its bind port and the supervisor's
registry."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from .dashboard import dashboard_socket
from .handover import Handover
from .registry import RemoteRegistry

if TYPE_CHECKING:
    from ...config.server import ServerConfig
    from ..banlist import FailLimit

log = logging.getLogger("aiofrp.server")


class _Tag(logging.Filter):
    """``@w1`` after the component of every line of worker 1 (``[server.control@w1]``): frp's line
    format otherwise, so log watchers (the README's fail2ban filter) still match."""

    def __init__(self, worker: int) -> None:
        super().__init__()
        self.tag = f"@w{worker}"

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.endswith(self.tag):
            record.name += self.tag
        return True


def console_logging(cfg: ServerConfig) -> ServerConfig:
    """``cfg`` with ``log.to = "console"`` (a worker's lines go to its supervisor)."""
    import msgspec

    return msgspec.structs.replace(cfg, log=msgspec.structs.replace(cfg.log, to="console"))


def tag_logs(worker: int) -> None:
    for handler in logging.getLogger("aiofrp").handlers:
        handler.addFilter(_Tag(worker))


async def serve_worker(cfg: ServerConfig, stop: asyncio.Event, worker: int, path: str,
                       limit: FailLimit | None = None) -> int:
    from ..service import Server

    server: Server | None = None

    async def evict(kind: str, key: str) -> None:
        if server is not None:
            await server.evict(kind, key)

    async def ask(frame: dict[str, Any]) -> Any:
        if frame.get("what") == "route" and server is not None:
            return server.has_route(*(str(frame.get(k, "")) for k in ("kind", "host", "path", "user")))
        return None

    registry = RemoteRegistry(path, worker, evict, ask)
    try:
        await registry.connect()
    except OSError as exc:
        log.error("cannot reach the frps supervisor at %s: %s", path, exc)
        return 1
    try:
        server = Server(cfg, fail_limit=limit, registry=registry, reuse_port=True,
                        dashboard_unix=dashboard_socket(path, worker) if cfg.web_server.port else "")
    except OSError as exc:
        log.error("create server error: %s", exc)
        return 1
    handover = Handover(path, registry, server.adopt, server.spawn)
    server.handover = handover
    try:
        handover.start()
        await server.start()
    except OSError as exc:
        log.error("create server listener error: %s", exc)
        return 1
    registry.ready()
    assert registry.lost is not None
    lost: asyncio.Future[object] = asyncio.ensure_future(registry.lost)
    stopped: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
    await asyncio.wait({lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
    orphan = lost.done() and not stopped.done()
    if orphan:
        log.warning("the frps supervisor is gone, exiting")
    for fut in (lost, stopped):
        fut.cancel()
    await server.close()
    handover.close()
    await registry.close()
    if orphan:  # killed, the supervisor could not remove its directory of unix sockets
        import shutil

        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    return 0
