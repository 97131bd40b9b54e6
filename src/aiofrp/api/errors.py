"""The Python API's exceptions: :class:`Error` and its kinds (``aiofrp.Error`` etc.)."""

from __future__ import annotations

from ..config.errors import ConfigError as _ConfigFileError

__all__ = ["ConfigError", "Error", "LoginError", "ProxyError"]


class Error(Exception):
    """Base of every error the aiofrp Python API raises."""


class ConfigError(Error, _ConfigFileError):
    """A setting that cannot be used, with the same text as ``frpc verify`` / ``frps verify``:
    ``<source>: <key>: <reason>``.

    Attributes: ``source`` (the file, or ``aiofrp.Client(...)`` for keyword arguments), ``path``
    (the key, as the caller spelled it), ``reason`` and ``value``.
    """

    @classmethod
    def wrap(cls, exc: _ConfigFileError) -> ConfigError:
        """The API's error for a config-layer :class:`aiofrp.config.ConfigError`."""
        if isinstance(exc, ConfigError):
            return exc
        return cls(exc.source, exc.path, exc.reason, exc.value)


class LoginError(Error):
    """frps refused the login (e.g. a wrong token), or could not be reached while logging in.

    ``reason`` is frps's answer, or what went wrong on the way.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ProxyError(Error):
    """frps refused a proxy (``reason`` is frps's answer, e.g. ``port not allowed``), or it did
    not answer in time. ``name`` is the proxy's name."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"proxy [{name}]: {reason}")
