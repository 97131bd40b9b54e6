"""What the admin API does to frpc's configuration (Go's ``client/config_manager.go``): reload the
config file, read and write it, show one entry's config, and the store's CRUD.

Every change ends in :meth:`Client.update_all`, which diffs what should run against what runs, so
unchanged proxies keep their connections. Operations are serialised by one lock (Go's
``reloadMu``). Failures raise :class:`ApiError` with the HTTP status Go answers.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import TYPE_CHECKING, Any

import msgspec

from ..config.errors import ConfigError
from .store import KINDS, StoreError, entry_json, parse_entry

if TYPE_CHECKING:
    from ..config.client import ClientConfig
    from ..config.proxy import ProxyBaseConfig
    from ..config.visitor import VisitorBaseConfig
    from .service import Client

log = logging.getLogger("aiofrp.client.admin")

PROXY_TYPES = ("tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp")
VISITOR_TYPES = ("stcp", "sudp", "xtcp")
_TYPES = {"proxy": PROXY_TYPES, "visitor": VISITOR_TYPES}
_STORE_CODES = {"not found": 404, "already exists": 409, "persist": 500}
_STORE_PREFIX = {"not found": "not found", "already exists": "conflict", "persist": "apply config failed"}


class ApiError(Exception):
    """An admin API failure: HTTP ``status`` and Go's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _changed_settings(old: ClientConfig, new: ClientConfig) -> list[str]:
    """The client's own settings that differ between two configs (not proxies/visitors/start)."""
    out = []
    for f in msgspec.structs.fields(old):
        if f.name in ("proxies", "visitors", "start", "includes"):
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if f.name == "auth" and old.auth.token_source is not None:
            a = msgspec.structs.replace(a, token="")  # resolved at start, not on reload
        if a != b:
            out.append(f.encode_name)
    return out


class ConfigManager:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.lock = asyncio.Lock()

    # -- the config file -----------------------------------------------------------------------

    def _path(self) -> str:
        if not self.client.config_path:
            raise ApiError(400, "frpc has no config file path")
        return self.client.config_path

    def load_file(self, path: str, strict: bool, text: str | None = None) -> ClientConfig:
        """Parse the config file (or ``text`` as if it were that file), includes followed; raises
        :class:`ConfigError`. The token source is not run again: client settings are not reloaded."""
        from ..config.load import load_client_config, parse_client_config

        c = self.client
        if text is None:
            return load_client_config(path, strict=strict, allow_unsafe=c.allow_unsafe, resolve_token_source=False)
        return parse_client_config(text, path, strict=strict, allow_unsafe=c.allow_unsafe,
                                   resolve_token_source=False, include_dir=os.path.dirname(path) or ".")

    async def reload_from_file(self, strict: bool) -> None:
        """``/api/reload``: read the file again; on any error nothing changes (400 + the error)."""
        path = self._path()
        async with self.lock:
            try:
                cfg = await asyncio.to_thread(self.load_file, path, strict)
            except ConfigError as exc:
                log.warning("reload frpc proxy config error: %s", exc)
                raise ApiError(400, str(exc)) from None
            c = self.client
            changed = _changed_settings(c.cfg, cfg)
            if changed:
                log.warning("reload: client settings changed (%s); as in frp, a reload applies proxies and "
                            "visitors only: restart frpc to apply them", ", ".join(changed))
            c.file_proxies, c.file_visitors, c.start_names = list(cfg.proxies), list(cfg.visitors), list(cfg.start)
            await c.update_all()
            log.info("success reload conf")

    async def verify_text(self, text: str, strict: bool) -> None:
        """aiofrp's ``POST /api/verify``: would ``text`` load as the config file? (400 + the error)"""
        path = self._path()
        try:
            await asyncio.to_thread(self.load_file, path, strict, text)
        except ConfigError as exc:
            raise ApiError(400, str(exc)) from None

    async def read_file(self) -> bytes:
        """``GET /api/config``: the file's bytes as they are (Go's ``os.ReadFile``: no newline
        translation, no decoding; a file that is not UTF-8 is served too)."""
        try:
            path = self._path()
        except ApiError as exc:
            log.warning("%s", exc.message)  # as Go's GET /api/config
            raise
        try:
            return await asyncio.to_thread(_read_bytes, path)
        except OSError as exc:
            message = go_path_error(exc, path)
            log.warning("load frpc config file error: %s", message)
            raise ApiError(400, message) from None

    async def write_file(self, body: bytes) -> None:
        if not body:
            raise ApiError(400, "body can't be empty")
        path = self._path()
        try:
            await asyncio.to_thread(_write_bytes, path, body)
        except OSError as exc:
            raise ApiError(500, f"write content to frpc config file error: {go_path_error(exc, path, 'open')}") from None

    # -- one entry -----------------------------------------------------------------------------

    def entry_config(self, kind: str, name: str) -> dict[str, Any]:
        """``/api/proxy/{name}/config``: the running entry's config, else the store's."""
        c = self.client
        entry: ProxyBaseConfig | VisitorBaseConfig | None = None
        if kind == "proxy":
            pw = c.proxies.get(name)
            entry = pw.cfg if pw is not None else None
        else:
            v = c.visitors.get(name)
            entry = v.cfg if v is not None else None
        if entry is None and c.store is not None:
            entry = c.store.get(kind, name)
        if entry is None:
            raise ApiError(404, f'{kind} "{name}" not found')
        return definition(entry)

    # -- the store -----------------------------------------------------------------------------

    def _store(self) -> Any:
        if self.client.store is None:
            raise ApiError(404, "store disabled: store API is disabled")
        return self.client.store

    def store_list(self, kind: str) -> dict[str, list[dict[str, Any]]]:
        store = self._store()
        table = store.proxies if kind == "proxy" else store.visitors
        return {KINDS[kind]: [definition(e) for _, e in sorted(table.items())]}

    def store_get(self, kind: str, name: str) -> dict[str, Any]:
        entry = self._store().get(kind, name)
        if entry is None:
            raise ApiError(404, f'not found: {kind} "{name}"')
        return definition(entry)

    def parse_definition(self, kind: str, body: bytes, path_name: str = "") -> ProxyBaseConfig | VisitorBaseConfig:
        """A ``{name, type, "<type>": {...}}`` body (Go's ``ProxyDefinition``/``VisitorDefinition``),
        validated as a config file entry would be."""
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise ApiError(400, f"parse JSON error: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, f"parse JSON error: the body must be a JSON object {{name, type, {kind} type block}}")
        name, typ = data.get("name"), data.get("type")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, f"{kind} name is required")
        if typ not in _TYPES[kind]:
            raise ApiError(400, f"invalid {kind} type: {typ}")
        if path_name and path_name != name:
            raise ApiError(400, f"{kind} name in URL must match name in body")
        blocks = [t for t in _TYPES[kind] if data.get(t) is not None]
        if len(blocks) != 1:
            raise ApiError(400, f"exactly one {kind} type block is required")
        if blocks[0] != typ:
            raise ApiError(400, f'{kind} type block "{blocks[0]}" does not match type "{typ}"')
        block = data[typ]
        if not isinstance(block, dict):
            raise ApiError(400, f"parse JSON error: {typ}: must be a JSON object")
        c = self.client
        try:
            return parse_entry(kind, {**block, "name": name, "type": typ}, f"{kind} {name!r}", c.cfg,
                               allow_unsafe=c.allow_unsafe)
        except ConfigError as exc:
            raise ApiError(400, f"invalid argument: validation error: {exc}") from None

    async def store_change(self, op: str, kind: str, body: bytes = b"", name: str = "") -> dict[str, Any] | None:
        """POST (create), PUT (update) or DELETE one store entry, then apply it like a reload."""
        store = self._store()
        entry = self.parse_definition(kind, body, name) if op != "delete" else None
        async with self.lock:
            try:
                if op == "create":
                    assert entry is not None
                    await asyncio.to_thread(store.add, kind, entry)
                elif op == "update":
                    assert entry is not None
                    await asyncio.to_thread(store.update, kind, entry)
                else:
                    await asyncio.to_thread(store.remove, kind, name)
            except StoreError as exc:
                raise ApiError(_STORE_CODES[exc.kind], f"{_STORE_PREFIX[exc.kind]}: {exc}") from None
            await self.client.update_all()
        log.info("store: %sd %s %r", op.rstrip("e"), kind, entry.name if entry is not None else name)
        return definition(entry) if entry is not None else None


def definition(entry: ProxyBaseConfig | VisitorBaseConfig) -> dict[str, Any]:
    """Go's ``ProxyDefinition``/``VisitorDefinition``: ``{name, type, "<type>": {v1 fields}}``."""
    return {"name": entry.name, "type": entry.type, entry.type: entry_json(entry)}


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def go_path_error(exc: OSError, path: str, op: str = "") -> str:
    """An ``OSError`` of ``path`` in Go's ``*fs.PathError`` words: ``open PATH: no such file or
    directory``, ``read PATH: is a directory`` (Go opens a directory, then fails reading it)."""
    reason = exc.strerror or str(exc)
    reason = reason[:1].lower() + reason[1:]  # Go's syscall texts are lower case
    if not op:
        op = "read" if exc.errno == errno.EISDIR else "open"
    return f"{op} {path}: {reason}"


def _write_bytes(path: str, body: bytes) -> None:
    # in place, as Go's os.WriteFile (a bind-mounted file cannot be replaced by a rename)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(body)
