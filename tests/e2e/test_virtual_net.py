"""frp's virtual network (``virtualNet.address`` + the ``virtual_net`` plugins, Go 0.62+ alpha):
two of our frpcs in two network namespaces, each with a TUN device, joined through our frps by an
stcp proxy (with useEncryption) and its visitor. TCP (1 MiB) and UDP from B to services bound to
A's virtual address 100.86.0.1 get through and are answered, and the service sees B's virtual
address 100.86.0.2 (support/vnet_pair.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.processes import ours_cmd
from support.vnet_pair import check, run_pair

pytestmark = pytest.mark.timeout(150)


def test_two_frpcs_joined_by_the_virtual_network(tmp_path: Path) -> None:
    result = run_pair(tmp_path, ours_cmd("frps"), ours_cmd("frpc"), ours_cmd("frpc"))
    check(result)
    logs = result["logs"]
    assert isinstance(logs, dict)
    assert result.get("a_tun") == ["utun0"], result  # Go's device names
    assert "virtual network controller start..." in logs["provider"]
    assert ("starting VirtualNetPlugin for visitor [vnet-visitor], attempting to register routes for "
            "100.86.0.1/32") in logs["visitor"]
