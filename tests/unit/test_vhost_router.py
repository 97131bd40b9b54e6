"""vhost routing (frp §6.1): exact, wildcard and ``*`` domains, locations, routeByHTTPUser, conflicts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.server.vhost import (
    build_domains,
    canonical_addr,
    register_routes,
    unregister_routes,
    validate_domains,
)
from aiofrp.server.vhost.router import Route, RouterConflict, Routers, wildcard_candidates


def table(*entries: tuple[str, str, str]) -> Routers[str]:
    r: Routers[str] = Routers()
    for domain, loc, user in entries:
        r.add(domain, loc, user, f"{domain}|{loc}|{user}")
    return r


def test_wildcard_candidates_order():
    assert list(wildcard_candidates("a.b.example.com")) == [
        "a.b.example.com", "*.b.example.com", "*.example.com", "*"]
    assert list(wildcard_candidates("example.com")) == ["example.com", "*"]
    assert list(wildcard_candidates("")) == ["", "*"]


def test_exact_wildcard_and_catch_all():
    r = table(("a.example.com", "", ""), ("*.example.com", "", ""), ("*.b.example.com", "", ""), ("*", "", ""))
    assert r.find("a.example.com") == "a.example.com||"
    assert r.find("x.example.com") == "*.example.com||"
    assert r.find("x.b.example.com") == "*.b.example.com||"  # most specific wildcard wins
    assert r.find("y.x.b.example.com") == "*.b.example.com||"
    assert r.find("example.com") == "*||"  # *.example.com does not match the bare domain
    assert r.find("other.org") == "*||"
    assert r.find("") == "*||"


def test_star_com_is_never_tried():
    r = table(("*.com", "", ""))
    assert r.find("example.com") is None
    assert r.find("a.example.com") is None  # labels dropped while >= 3 remain: *.com is not reached


def test_domains_are_case_insensitive_on_add():
    r = table(("A.Example.COM", "", ""))
    assert r.find("a.example.com") == "A.Example.COM||"


def test_locations_longest_prefix_by_descending_order():
    r = table(("h", "", ""), ("h", "/", ""), ("h", "/api", ""), ("h", "/api/v2", ""))
    assert r.find("h", "/api/v2/x") == "h|/api/v2|"
    assert r.find("h", "/api/v1") == "h|/api|"
    assert r.find("h", "/apix") == "h|/api|"  # string prefix, as frp does
    assert r.find("h", "/other") == "h|/|"
    assert r.find("h", "") == "h||"
    assert r.find("h", "*") == "h||"


def test_route_by_http_user():
    r = table(("h", "", "alice"), ("h", "", ""), ("w.h.example", "/x", "bob"))
    assert r.find("h", "/", "alice") == "h||alice"
    assert r.find("h", "/", "carol") == "h||"
    assert r.find("h", "/", "") == "h||"
    r2 = table(("h", "", "alice"))
    assert r2.find("h", "/", "bob") is None
    assert r2.find("h", "/", "") is None


def test_user_route_at_a_less_specific_domain_loses_to_exact_domain():
    r = table(("a.example.com", "", ""), ("*.example.com", "", "alice"))
    assert r.find("a.example.com", "/", "alice") == "a.example.com||"


def test_conflict_and_remove():
    r = table(("h", "/a", "u"))
    with pytest.raises(RouterConflict, match="router config conflict"):
        r.add("H", "/a", "u", "again")
    r.add("h", "/a", "v", "other user ok")
    r.add("h", "/b", "u", "other location ok")
    assert len(r) == 3
    assert r.remove("h", "/a", "u") == "h|/a|u"
    assert r.remove("h", "/a", "u") is None
    r.add("h", "/a", "u", "re-added")
    assert r.find("h", "/a", "u") == "re-added"


def test_route_members_and_pick():
    route: Route[str] = Route("H.example", "/x", "u", http_user="a", http_pwd="b")
    assert route.key == ("h.example", "/x", "u")
    assert route.pick() is None
    route.members += ["m1", "m2", "m3"]
    picks = [route.pick() or "" for _ in range(6)]
    assert sorted(picks) == ["m1", "m1", "m2", "m2", "m3", "m3"]
    assert route.needs_auth and route.check_auth("a", "b") and not route.check_auth("a", "c")
    assert Route("x").check_auth("", "")


def test_register_is_all_or_nothing():
    from aiofrp.server.errors import ProxyError

    r: Routers[Route] = Routers()
    register_routes(r, [Route("taken")], "p0")
    with pytest.raises(ProxyError, match="router config conflict"):
        register_routes(r, [Route("free"), Route("taken")], "p1")
    assert r.find("free") is None
    routes = register_routes(r, [Route("free")], "p1")
    assert r.find("free").members == ["p1"]
    unregister_routes(r, routes, "p1")
    assert r.find("free") is None and r.find("taken") is not None


def test_domain_helpers():
    from aiofrp.server.errors import ProxyError

    assert build_domains(["a.com", ""], "app", "frps.test") == ["a.com", "app.frps.test"]
    assert canonical_addr("a.com", 80) == "a.com" and canonical_addr("a.com", 443) == "a.com"
    assert canonical_addr("a.com", 8080) == "a.com:8080"
    validate_domains(["a.com"], "", "")
    validate_domains(["frps.test"], "app", "frps.test")  # the host itself is not a sub-domain of it
    with pytest.raises(ProxyError, match="should not belong to subdomain host"):
        validate_domains(["x.frps.test"], "", "frps.test")
    with pytest.raises(ProxyError, match="not enabled in server"):
        validate_domains([], "app", "")
    with pytest.raises(ProxyError, match="not supported in subdomain"):
        validate_domains([], "a.b", "frps.test")
    with pytest.raises(ProxyError, match="not supported in subdomain"):
        validate_domains([], "*", "frps.test")


# -- a model of frp's lookup, checked against the table on random inputs ---------------------------

LABELS = st.sampled_from(["a", "b", "c", "example", "com"])
DOMAINS = st.one_of(
    st.just("*"),
    st.lists(LABELS, min_size=1, max_size=4).map(".".join),
    st.lists(LABELS, min_size=2, max_size=4).map(lambda ls: "*." + ".".join(ls)),
)
LOCS = st.sampled_from(["", "/", "/a", "/a/b", "/b"])
USERS = st.sampled_from(["", "u1", "u2"])


def model_find(entries: dict[tuple[str, str, str], str], host: str, path: str, user: str) -> str | None:
    def at(domain: str, u: str) -> str | None:
        locs = sorted((loc for (d, loc, uu) in entries if d == domain and uu == u), reverse=True)
        for loc in locs:
            if path.startswith(loc):
                return entries[(domain, loc, u)]
        return None

    candidates = [host]
    labels = host.split(".")
    while len(labels) >= 3:
        labels[0] = "*"
        candidates.append(".".join(labels))
        labels = labels[1:]
    candidates.append("*")
    for d in candidates:
        for u in ([user, ""] if user else [""]):
            found = at(d, u)
            if found is not None:
                return found
    return None


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(st.tuples(DOMAINS, LOCS, USERS), max_size=12),
    queries=st.lists(st.tuples(st.lists(LABELS, min_size=1, max_size=5).map(".".join), st.sampled_from(
        ["", "/", "/a", "/a/b/c", "/b", "/c"]), USERS), min_size=1, max_size=10),
)
def test_find_matches_model(entries, queries):
    r: Routers[str] = Routers()
    model: dict[tuple[str, str, str], str] = {}
    for i, key in enumerate(entries):
        if key in model:
            with pytest.raises(RouterConflict):
                r.add(key[0], key[1], key[2], f"p{i}")
            continue
        r.add(key[0], key[1], key[2], f"p{i}")
        model[key] = f"p{i}"
    assert len(r) == len(model)
    for host, path, user in queries:
        assert r.find(host, path, user) == model_find(model, host, path, user)


def test_not_found_pages(tmp_path):
    from aiofrp.server.vhost.pages import NOT_FOUND_PAGE, not_found_page, raw_not_found

    page = tmp_path / "404.html"
    page.write_bytes(b"mine")
    assert not_found_page(str(page)) == b"mine"
    assert not_found_page(str(tmp_path / "missing.html")) == NOT_FOUND_PAGE  # unreadable: frp's page
    assert not_found_page("") == NOT_FOUND_PAGE
    raw = raw_not_found("")
    assert raw.startswith(b"HTTP/1.1 404 Not Found\r\n") and b"\r\nServer: frp/0.65.0\r\n" in raw
    assert raw.endswith(NOT_FOUND_PAGE) and f"Content-Length: {len(NOT_FOUND_PAGE)}".encode() in raw
