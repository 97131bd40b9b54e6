"""Server manage plugins (``[[httpPlugins]]``): frps asks HTTP services before it accepts a
Login, a NewProxy, a Ping, a work or a user connection, and tells them about closed proxies
(Go: pkg/plugin/server; frp §7.8). ``manager.py: Manager`` is what frps uses, ``http.py:
HTTPPlugin`` one plugin, ``types.py`` the JSON both sides exchange, ``gojson.py`` Go's JSON
decoder's verdicts and error texts on a plugin's answer."""

from .manager import Manager, PluginRefused
from .types import Op, UserInfo

__all__ = ["Manager", "Op", "PluginRefused", "UserInfo"]
