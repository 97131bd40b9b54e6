"""The TUN device of frpc's virtual network (Go's ``pkg/vnet/tun_linux.go``), Linux only.

``open_tun("100.86.0.1/24")`` creates a TUN interface named like Go's (``utunN``, one past the
highest ``utunN`` present; a name derived from the address if the interfaces cannot be listed),
with no packet-information header, MTU 1420, the address, up, and a route to the address's network
through it (replaced if one exists). Addresses and routes are set over netlink with pyroute2
(imported here only: a frpc without ``virtualNet`` never loads it). The interface lives as long as
its descriptor: closing it removes the interface, its address and route with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

__all__ = ["TunDevice", "TunError", "open_tun"]

BASE_NAME = "utun"
MTU = 1420  # Go's defaultMTU
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_IFNAMSIZ = 16


class TunError(OSError):
    """The device could not be made or set up; the text says which step and why."""


@dataclass
class TunDevice:
    fd: int  # non-blocking; one read returns one packet
    name: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def next_name(base: str = BASE_NAME) -> str:
    """``utunN`` one past the highest ``N`` in use (Go's ``findNextTunName``)."""
    highest = -1
    for _, name in socket.if_nameindex():
        suffix = name[len(base):] if name.startswith(base) else ""
        if suffix.isdigit():
            highest = max(highest, int(suffix))
    return f"{base}{highest + 1}"


def fallback_name(addr: str, base: str = BASE_NAME) -> str:
    """A name from the address (Go's ``getFallbackTunName``: 8 hex digits of its SHA-256)."""
    return base + hashlib.sha256(addr.encode()).hexdigest()[:8]


def parse_address(addr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """``virtualNet.address`` as an interface address; ValueError with Go's words if it is not one."""
    if "/" not in addr:
        raise ValueError(f"invalid CIDR address: {addr}")
    try:
        return ipaddress.ip_interface(addr)
    except ValueError:
        raise ValueError(f"invalid CIDR address: {addr}") from None


def open_tun(addr: str) -> TunDevice:
    """Create and set up the device for ``addr`` (an IP with its prefix length); :class:`TunError`."""
    iface = parse_address(addr)
    try:
        name = next_name()
    except OSError:
        name = fallback_name(addr)
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise TunError(f"failed to create TUN device '{name}': {exc.strerror or exc}") from None
    try:
        try:
            got = fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
        except OSError as exc:
            raise TunError(f"failed to create TUN device '{name}': {exc.strerror or exc}") from None
        name = got[:_IFNAMSIZ].split(b"\0", 1)[0].decode()
        _configure(name, iface)
    except BaseException:
        os.close(fd)
        raise
    return TunDevice(fd, name, iface.network)


def _configure(name: str, iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
    from pyroute2 import IPRoute  # type: ignore[import-untyped]
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

    step = "find the interface"
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise TunError(f"interface {name} not found after creating it")
            index = found[0]
            step = f"add address {iface.with_prefixlen}"
            ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            step = "set the link up"
            ipr.link("set", index=index, state="up", mtu=MTU)
            step = f"add route to {iface.network}"
            ipr.route("replace", dst=str(iface.network), oif=index)
    except NetlinkError as exc:
        reason = exc.args[1] if len(exc.args) > 1 else os.strerror(exc.code)
        raise TunError(f"{name}: {step}: {reason}") from None
    except OSError as exc:
        raise TunError(f"{name}: {step}: {exc.strerror or exc}") from None
    except (RuntimeError, ValueError) as exc:  # pyroute2's own failures: a reason, never a traceback
        raise TunError(f"{name}: {step}: {exc}") from None
