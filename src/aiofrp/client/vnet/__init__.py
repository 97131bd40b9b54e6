"""frpc's virtual network (``virtualNet.address`` with ``featureGates.VirtualNet``, Go's
``pkg/vnet``): a TUN interface whose IP packets travel over stcp/xtcp connections between frpcs.
See :mod:`.controller`."""

from __future__ import annotations

from .controller import Controller, VnetError

__all__ = ["Controller", "VnetError"]
