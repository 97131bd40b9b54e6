# Types of aiofrp/__init__.py, whose Python API names are loaded on first use (see its docstring).
from .api import (
    BlockingTunnel as BlockingTunnel,
)
from .api import (
    Client as Client,
)
from .api import (
    ConfigError as ConfigError,
)
from .api import (
    Error as Error,
)
from .api import (
    Event as Event,
)
from .api import (
    LoginError as LoginError,
)
from .api import (
    ProxyError as ProxyError,
)
from .api import (
    ProxyInfo as ProxyInfo,
)
from .api import (
    Server as Server,
)
from .api import (
    Tunnel as Tunnel,
)
from .api import (
    Visitor as Visitor,
)
from .api import (
    expose as expose,
)
from .api import (
    shutdown as shutdown,
)

__version__: str
FRP_VERSION: str
__all__ = [
    "FRP_VERSION",
    "BlockingTunnel",
    "Client",
    "ConfigError",
    "Error",
    "Event",
    "LoginError",
    "ProxyError",
    "ProxyInfo",
    "Server",
    "Tunnel",
    "Visitor",
    "__version__",
    "expose",
    "shutdown",
    "version_text",
]

def version_text() -> str: ...
