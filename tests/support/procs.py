"""The test helpers' former single module, kept so that ``from support.procs import ...`` goes
on working. New code imports from the modules by concern:

* :mod:`support.ports`: ``LOCALHOST``, ``free_port``, ``wait_port``
* :mod:`support.processes`: ``FrpProcess``, ``FrpLauncher``, ours/Go commands, the ``frp`` fixture
* :mod:`support.services`: ``TEST_STRING``, echo/UDP/HTTP services, ``tcp_roundtrip``, ``udp_roundtrip``
* :mod:`support.bulk`: the bulk sink/source
* :mod:`support.configs`: ``frps_config``, ``frpc_config``, ``tcp_proxy``, ``udp_proxy``, ``block``
"""

from __future__ import annotations

from .bulk import BulkRecord, BulkResult, BulkServer, bulk_download, bulk_pattern, bulk_upload
from .configs import block, frpc_config, frps_config, tcp_proxy, udp_proxy
from .ports import LOCALHOST, free_port, free_udp_port, wait_port
from .processes import (
    PAIRINGS,
    FrpLauncher,
    FrpProcess,
    LogTimeout,
    coverage_measures_children,
    go_cmd,
    go_frpc,
    go_frps,
    ours_available,
    ours_cmd,
    ours_frpc,
    ours_frps,
)
from .services import (
    TEST_STRING,
    EchoServer,
    HttpRequestRecord,
    HttpServer,
    ThreadedTCPService,
    UdpEchoServer,
    tcp_roundtrip,
    udp_roundtrip,
)

__all__ = [
    "LOCALHOST",
    "PAIRINGS",
    "TEST_STRING",
    "BulkRecord",
    "BulkResult",
    "BulkServer",
    "EchoServer",
    "FrpLauncher",
    "FrpProcess",
    "HttpRequestRecord",
    "HttpServer",
    "LogTimeout",
    "ThreadedTCPService",
    "UdpEchoServer",
    "block",
    "bulk_download",
    "bulk_pattern",
    "bulk_upload",
    "coverage_measures_children",
    "free_port",
    "free_udp_port",
    "frpc_config",
    "frps_config",
    "go_cmd",
    "go_frpc",
    "go_frps",
    "ours_available",
    "ours_cmd",
    "ours_frpc",
    "ours_frps",
    "tcp_proxy",
    "tcp_roundtrip",
    "udp_proxy",
    "udp_roundtrip",
    "wait_port",
]

try:  # the fixtures and the stash key exist only when pytest is around (bench/ imports this module)
    from .bulk import bulk_server
    from .processes import LAUNCHERS_KEY, frp, gofrp_bins
    from .services import echo_server, http_server, udp_echo_server

    __all__ += ["LAUNCHERS_KEY", "bulk_server", "echo_server", "frp", "gofrp_bins", "http_server", "udp_echo_server"]
except ImportError:  # pragma: no cover
    pass
