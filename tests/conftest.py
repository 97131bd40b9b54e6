"""Shared pytest configuration: markers, fixtures from tests/support, failure logs of frp processes.

Markers
  compat  needs the real Go frp 0.65.0 binaries (fetched once into ~/.cache/aiofrp; skipped on
          platforms other than linux/amd64 or when AIOFRP_SKIP_COMPAT is set).  Every test under
          tests/compat/ gets it automatically.
  slow    long-running; deselect with ``-m "not slow"``.

Fixtures (defined in tests/support/processes.py, services.py, bulk.py, browser.py)
  frp              FrpLauncher: .ours_frps/.ours_frpc/.go_frps/.go_frpc(config_text) -> FrpProcess;
                   everything is SIGKILLed at test end, logs are attached to failure reports.
  gofrp_bins       (frps, frpc) paths of Go frp 0.65.0 (session scope).
  browser          support.browser.Browser: headless Debian Chromium via Selenium (installed with
                   apt-get when missing), waits with deadlines, screenshots in tests/artifacts/.
  echo_server, udp_echo_server, http_server, bulk_server   started local services (.port).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import _chromium, browser  # noqa: F401  (imported fixtures are registered by pytest)
from support.bulk import bulk_server  # noqa: F401  (imported fixtures are registered by pytest)
from support.processes import (  # noqa: F401
    LAUNCHERS_KEY,
    frp,
    gofrp_bins,
)
from support.services import echo_server, http_server, udp_echo_server  # noqa: F401
from support.stun import stun_server  # noqa: F401  (imported fixtures are registered by pytest)

_COMPAT_DIR = Path(__file__).parent / "compat"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compat: needs the real Go frp 0.65.0 binaries (frps/frpc)")
    config.addinivalue_line("markers", "slow: long-running test (deselect with -m 'not slow')")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _COMPAT_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.compat)


@pytest.fixture(autouse=True)
def _compat_needs_go_binaries(request: pytest.FixtureRequest) -> None:
    """Fetch/verify the Go binaries (or skip) before any ``compat`` test starts."""
    if request.node.get_closest_marker("compat") is not None:
        request.getfixturevalue("gofrp_bins")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    rep = yield
    if rep.failed and rep.when in ("setup", "call"):
        for launcher in item.stash.get(LAUNCHERS_KEY, []):
            if launcher.processes:
                rep.sections.append((f"frp process logs ({rep.when})", launcher.dump_logs()))
    return rep
