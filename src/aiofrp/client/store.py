"""The store (``store.path``, frp >= 0.68's ``pkg/config/source/store.go``): proxies and visitors
added at run time through the admin API's ``/api/store/*``, persisted as one JSON file
``{"proxies": [...], "visitors": [...]}`` (each entry in frp's v1 JSON form, ``name`` and ``type``
included) and merged with the config file's entries (a store entry wins over a file entry of the
same name, as Go's aggregator).

The file is written to ``PATH.tmp``, fsynced and renamed over ``PATH``, so a crash never leaves a
half-written store; a failed write leaves the in-memory store unchanged too.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from ..config.client import ClientConfig
from ..config.decode import from_data
from ..config.dump import to_frp_dict
from ..config.errors import ConfigError
from ..config.proxy import ProxyBaseConfig
from ..config.validate import validate_client_config
from ..config.visitor import VisitorBaseConfig

if TYPE_CHECKING:
    from collections.abc import Collection

Entry = TypeVar("Entry", ProxyBaseConfig, VisitorBaseConfig)

KINDS = {"proxy": "proxies", "visitor": "visitors"}


class StoreError(Exception):
    """A store operation that cannot be done; ``kind`` is Go's configmgmt error class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "not found" | "already exists" | "persist"


def parse_entry(
    kind: str, data: object, source: str, common: ClientConfig, *, strict: bool = True,
    allow_unsafe: Collection[str] = frozenset(),
) -> ProxyBaseConfig | VisitorBaseConfig:
    """One proxy (``kind`` "proxy") or visitor from its v1 JSON form, decoded and validated like an
    entry of a config file (``common`` gives the client settings it is validated with). Errors are
    :class:`ConfigError` with the entry's own key path (``localPort``, not ``proxies[0].localPort``)."""
    key = KINDS[kind]
    try:
        cfg = from_data(ClientConfig, {key: [data]}, source, strict=strict)
        whole = msgspec.structs.replace(common, proxies=cfg.proxies, visitors=cfg.visitors, includes=[])
        validate_client_config(whole, source, allow_unsafe=allow_unsafe)
    except ConfigError as exc:
        prefix = f"{key}[0]"
        path = exc.path
        if path.startswith(prefix):
            path = path[len(prefix):].lstrip(".")
        raise ConfigError(exc.source, path, exc.reason, exc.value) from None
    items: list[Any] = cfg.proxies if kind == "proxy" else cfg.visitors
    return items[0]


def entry_json(entry: ProxyBaseConfig | VisitorBaseConfig) -> dict[str, Any]:
    """An entry in frp's v1 JSON form (keys that differ from frp's defaults, ``name``/``type`` first)."""
    return to_frp_dict(entry)


class StoreSource:
    """The store file and its entries, by name."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.proxies: dict[str, ProxyBaseConfig] = {}
        self.visitors: dict[str, VisitorBaseConfig] = {}

    def load(self, common: ClientConfig, allow_unsafe: Collection[str] = frozenset()) -> None:
        """Read the file (a missing file is an empty store). Raises :class:`ConfigError`
        (``PATH: proxies[i].KEY: reason``) for a file that cannot be used."""
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ConfigError(self.path, "", f"cannot read the store: {exc.strerror or exc}") from None
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise ConfigError(self.path, "", f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(self.path, "", "the store must be a JSON object {\"proxies\": [...], \"visitors\": [...]}")
        for kind, key in KINDS.items():
            items = data.get(key)
            if items is None:
                continue
            if not isinstance(items, list):
                raise ConfigError(self.path, key, "must be an array")
            target: dict[str, Any] = self.proxies if kind == "proxy" else self.visitors
            for i, item in enumerate(items):
                try:
                    # Go reads its store leniently (unknown fields ignored); a key aiofrp does not know
                    # must not be dropped in silence, so the store is read strictly like a config file
                    entry = parse_entry(kind, item, self.path, common, allow_unsafe=allow_unsafe)
                except ConfigError as exc:
                    path = f"{key}[{i}]" + (f".{exc.path}" if exc.path else "")
                    raise ConfigError(self.path, path, exc.reason, exc.value) from None
                target[entry.name] = entry

    def save(self) -> None:
        """Write the file atomically (tmp file, fsync, rename). Raises OSError."""
        data = {
            "proxies": [entry_json(p) for _, p in sorted(self.proxies.items())],
            "visitors": [entry_json(v) for _, v in sorted(self.visitors.items())],
        }
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        tmp = self.path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _table(self, kind: str) -> dict[str, Any]:
        return self.proxies if kind == "proxy" else self.visitors

    def get(self, kind: str, name: str) -> ProxyBaseConfig | VisitorBaseConfig | None:
        entry: ProxyBaseConfig | VisitorBaseConfig | None = self._table(kind).get(name)
        return entry

    def add(self, kind: str, entry: ProxyBaseConfig | VisitorBaseConfig) -> None:
        table = self._table(kind)
        if entry.name in table:
            raise StoreError("already exists", f'already exists: {kind} "{entry.name}"')
        table[entry.name] = entry
        self._persist(lambda: table.pop(entry.name))

    def update(self, kind: str, entry: ProxyBaseConfig | VisitorBaseConfig) -> None:
        table = self._table(kind)
        old = table.get(entry.name)
        if old is None:
            raise StoreError("not found", f'not found: {kind} "{entry.name}"')
        table[entry.name] = entry
        self._persist(lambda: table.__setitem__(entry.name, old))

    def remove(self, kind: str, name: str) -> None:
        table = self._table(kind)
        old = table.pop(name, None)
        if old is None:
            raise StoreError("not found", f'not found: {kind} "{name}"')
        self._persist(lambda: table.__setitem__(name, old))

    def _persist(self, undo: Any) -> None:
        try:
            self.save()
        except OSError as exc:
            undo()
            raise StoreError("persist", f"failed to persist: {exc}") from None
