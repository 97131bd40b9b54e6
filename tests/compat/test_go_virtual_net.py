"""The virtual network between our frpc and Go frpc 0.65.0, both ways: Go's provider (the stcp
proxy with the ``virtual_net`` plugin) with our visitor, and ours with Go's visitor, each frpc in a
network namespace of its own with its TUN device (support/vnet_pair.py): the framing of packets
over the connection (4-byte little-endian length) and the routing by address are Go's."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.processes import go_cmd, ours_cmd
from support.vnet_pair import check, run_pair

pytestmark = [pytest.mark.compat, pytest.mark.timeout(150)]


@pytest.mark.parametrize("provider", ["go", "ours"])
def test_virtual_network_with_go_frpc(tmp_path: Path, gofrp_bins, provider: str) -> None:
    go, ours = go_cmd("frpc"), ours_cmd("frpc")
    result = run_pair(tmp_path, go_cmd("frps"), go if provider == "go" else ours, ours if provider == "go" else go)
    check(result)
