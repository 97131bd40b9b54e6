"""``auth.tokenSource``: read the token from a file or a command's output (resolved at load time)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Collection

from .base import ValueSource
from .client import AuthClientConfig
from .errors import ConfigError
from .server import AuthServerConfig

TOKEN_SOURCE_EXEC = "TokenSourceExec"
"""The ``--allow-unsafe`` feature name that permits ``tokenSource.type = "exec"``."""

TOKEN_SOURCE_TIMEOUT = 10.0
"""Seconds an ``exec`` token source may run before loading fails."""


def unsafe_exec_error(source: str, path: str) -> ConfigError:
    """The error for an exec token source without ``--allow-unsafe=TokenSourceExec``."""
    return ConfigError(source, path, f'unsafe feature "{TOKEN_SOURCE_EXEC}" is not enabled')


def resolve_value_source(
    vs: ValueSource,
    path: str,
    source: str,
    *,
    allow_unsafe: Collection[str] = frozenset(),
    timeout: float | None = None,
) -> str:
    """The secret ``vs`` points at, whitespace-trimmed; ``path`` names it (``auth.tokenSource``) in errors."""
    if vs.type == "file":
        file_path = vs.file.path if vs.file else ""
        if not file_path:
            raise ConfigError(source, f"{path}.file.path", 'must be set when type is "file"')
        try:
            with open(file_path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ConfigError(
                source, f"{path}.file.path", f"cannot read token file {file_path!r}: {e.strerror or e}"
            ) from None
        return data.decode("utf-8", errors="replace").strip()
    if vs.type == "exec":
        if TOKEN_SOURCE_EXEC not in allow_unsafe:
            raise unsafe_exec_error(source, f"{path}.exec")
        return _run(vs, path, source, TOKEN_SOURCE_TIMEOUT if timeout is None else timeout)
    raise ConfigError(
        source,
        f"{path}.type",
        f"unsupported value source type {vs.type!r}, must be one of file, exec",
        vs.type,
    )


def _run(vs: ValueSource, path: str, source: str, timeout: float) -> str:
    ex = vs.exec
    if ex is None or not ex.command:
        raise ConfigError(source, f"{path}.exec.command", 'must be set when type is "exec"')
    env = dict(os.environ)
    env.update({e.name: e.value for e in ex.env})
    where = f"{path}.exec.command"
    try:
        done = subprocess.run(
            [ex.command, *ex.args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(source, where, f"command {ex.command!r} timed out after {timeout:g} s") from None
    except OSError as e:
        raise ConfigError(source, where, f"cannot run command {ex.command!r}: {e.strerror or e}") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", errors="replace").strip()
        detail = f": {err[-300:]}" if err else ""
        raise ConfigError(
            source, where, f"command {ex.command!r} failed with exit status {done.returncode}{detail}"
        )
    return done.stdout.decode("utf-8", errors="replace").strip()


def resolve_auth_token(
    auth: AuthServerConfig | AuthClientConfig, source: str, *, allow_unsafe: Collection[str] = frozenset()
) -> None:
    """Replace ``auth.tokenSource`` by the token it yields (``auth.token``), in place. Only for
    ``auth.method = "token"``, as Go: with OIDC it is left unread and ``auth.token`` (the key that
    encrypts the control connection) stays what the file says."""
    if auth.token_source is None or auth.method != "token":
        return
    auth.token = resolve_value_source(
        auth.token_source, "auth.tokenSource", source, allow_unsafe=allow_unsafe
    )
    auth.token_source = None
