"""Virtual-host routing shared by the http, https and tcpmux vhosts (frp §6.1), sans-I/O.

A route key is ``(domain, location, routeByHTTPUser)``; domains are lower-cased, ``*.example.com``
and ``*`` are literal keys that :meth:`Routers.find` tries after the exact host. Registering a key
twice fails with ``router config conflict``.

The payload of a key is a :class:`Route`: its settings plus the proxies serving it (``members``).
A route has one member, or several for a load-balancing group (server/group.py: later members
join the first member's routes, whose settings stay in force); :meth:`Route.pick` rotates over them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from ...proto.crypto import secret_equal

__all__ = ["Route", "RouterConflict", "Routers", "wildcard_candidates"]

T = TypeVar("T")
M = TypeVar("M")  # what serves a route: a proxy, as the vhost sees it


class RouterConflict(Exception):
    """The (domain, location, routeByHTTPUser) key is taken."""

    def __init__(self) -> None:
        super().__init__("router config conflict")


class Route(Generic[M]):
    """What a matched request is handed to: settings of the route and the proxies serving it."""

    __slots__ = (
        "_next",
        "domain",
        "first_member_first",
        "headers",
        "host_rewrite",
        "http_pwd",
        "http_user",
        "location",
        "members",
        "response_headers",
        "route_by_http_user",
    )

    def __init__(
        self,
        domain: str,
        location: str = "",
        route_by_http_user: str = "",
        *,
        http_user: str = "",
        http_pwd: str = "",
        host_rewrite: str = "",
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
        first_member_first: bool = False,
    ) -> None:
        self.domain = domain.lower()
        self.location = location
        self.route_by_http_user = route_by_http_user
        self.http_user = http_user
        self.http_pwd = http_pwd
        self.host_rewrite = host_rewrite
        self.headers = dict(headers or {})
        self.response_headers = dict(response_headers or {})
        self.members: list[M] = []
        self._next = 0
        # Go's http groups start their rotation at the second member (an index incremented before
        # use); its tcpmux groups hand connections to the members' waiting accept loops, the
        # first member first
        self.first_member_first = first_member_first

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.domain, self.location, self.route_by_http_user)

    @property
    def needs_auth(self) -> bool:
        return bool(self.http_user or self.http_pwd)

    def check_auth(self, user: str, pwd: str) -> bool:
        if not self.needs_auth:
            return True
        # both compared, in constant time: no early exit tells a prober which half was right
        user_ok = secret_equal(user, self.http_user)
        return secret_equal(pwd, self.http_pwd) and user_ok

    def pick(self) -> M | None:
        """The member for the next connection or request (round-robin); None if there is none."""
        members = self.members
        if not members:
            return None
        if len(members) == 1:
            return members[0]
        if self.first_member_first:
            i = self._next % len(members)
            self._next = i + 1
            return members[i]
        self._next = (self._next + 1) % len(members)
        return members[self._next]


class Routers(Generic[T]):
    """domain -> routeByHTTPUser -> [(location, payload)], locations sorted descending."""

    def __init__(self) -> None:
        self._index: dict[str, dict[str, list[tuple[str, T]]]] = {}

    def __len__(self) -> int:
        return sum(len(v) for users in self._index.values() for v in users.values())

    def add(self, domain: str, location: str, http_user: str, payload: T) -> None:
        domain = domain.lower()
        routes = self._index.setdefault(domain, {}).setdefault(http_user, [])
        if any(loc == location for loc, _ in routes):
            raise RouterConflict()
        routes.append((location, payload))
        # Go sorts by location, descending (byte order = code point order for UTF-8).
        routes.sort(key=lambda r: r[0], reverse=True)

    def remove(self, domain: str, location: str, http_user: str) -> T | None:
        domain = domain.lower()
        users = self._index.get(domain)
        if users is None:
            return None
        routes = users.get(http_user)
        if not routes:
            return None
        for i, (loc, payload) in enumerate(routes):
            if loc == location:
                del routes[i]
                if not routes:
                    del users[http_user]
                    if not users:
                        del self._index[domain]
                return payload
        return None

    def get(self, domain: str, path: str, http_user: str) -> T | None:
        """Exact-domain lookup: the route of ``http_user`` whose location is a prefix of ``path``."""
        users = self._index.get(domain)
        if users is None:
            return None
        routes = users.get(http_user)
        if routes:
            for loc, payload in routes:
                if path.startswith(loc):
                    return payload
        return None

    def _get_user_or_any(self, domain: str, path: str, http_user: str) -> T | None:
        users = self._index.get(domain)
        if users is None:
            return None
        for user in (http_user, "") if http_user else ("",):
            routes = users.get(user)
            if routes:
                for loc, payload in routes:
                    if path.startswith(loc):
                        return payload
        return None

    def find(self, host: str, path: str = "", http_user: str = "") -> T | None:
        """frp's lookup order: the host, its wildcard parents, then ``*``; at each domain the
        routes of ``http_user`` before the routes without routeByHTTPUser. ``host`` must already
        be canonical (lower-case, no port, no trailing dot)."""
        if not self._index:
            return None
        get = self._get_user_or_any
        for domain in wildcard_candidates(host):
            found = get(domain, path, http_user)
            if found is not None:
                return found
        return None

    def payloads(self) -> Iterator[T]:
        for users in self._index.values():
            for routes in users.values():
                for _, payload in routes:
                    yield payload


def wildcard_candidates(host: str) -> Iterator[str]:
    """``a.b.example.com`` -> itself, ``*.b.example.com``, ``*.example.com``, then ``*``."""
    yield host
    labels = host.split(".")
    while len(labels) >= 3:
        labels[0] = "*"
        yield ".".join(labels)
        del labels[0]
    yield "*"
