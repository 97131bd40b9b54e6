"""frpc's ``dnsServer``: look host names up with one given DNS server instead of the system's.

Go frpc replaces ``net.DefaultResolver`` with its pure-Go resolver dialling ``dnsServer`` (port 53
unless one is given). We ask that server for ``serverAddr`` (and a proxy's host in
``transport.proxyURL``) with dnspython's asyncio resolver: A and AAAA in parallel, IPv4 first,
UDP with TCP on truncation. dnspython is the maintained, pure-Python DNS library (no C library,
unlike aiodns/c-ares) and takes a server on any port, which the tests need.

An IP address is used as is; a name that the server does not know fails the dial with
``no such host (dnsServer SERVER)``, which net/dialerr.py writes as Go does (``lookup NAME on SERVER: no such host``), never
with a lookup through the system. Go's resolver reads ``/etc/hosts`` before asking; we ask the server
for every name (only IP literals skip it).
"""

from __future__ import annotations

import asyncio
import socket


class Resolver:
    """Looks names up with one DNS server (``await resolver.resolve(name)`` -> IP strings)."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        import dns.asyncresolver

        self.label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        r = dns.asyncresolver.Resolver(configure=False)
        r.nameservers = [host]
        r.port = port
        r.lifetime = timeout
        r.timeout = timeout
        r.cache = None  # frpc asks once per (re)connection; the server's TTLs decide
        self._r = r

    async def resolve(self, name: str) -> list[str]:
        """The addresses of ``name`` (IPv4 first); ``socket.gaierror`` with Go's text if none."""
        import ipaddress  # here: only with dnsServer set

        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            pass
        else:
            return [name.strip("[]")]
        a, aaaa = await asyncio.gather(self._query(name, "A"), self._query(name, "AAAA"))
        addrs = a + aaaa
        if not addrs:
            raise socket.gaierror(socket.EAI_NONAME, f"no such host (dnsServer {self.label})")
        return addrs

    async def _query(self, name: str, rdtype: str) -> list[str]:
        import dns.exception
        import dns.resolver

        try:
            answer = await self._r.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise socket.gaierror(socket.EAI_AGAIN, f"i/o timeout (dnsServer {self.label})") from None
        except dns.resolver.NoNameservers:
            raise socket.gaierror(socket.EAI_FAIL, f"server misbehaving (dnsServer {self.label})") from None
        except dns.exception.DNSException as e:
            raise socket.gaierror(socket.EAI_FAIL, f"{e} (dnsServer {self.label})") from None
        return [rr.to_text() for rr in answer]
