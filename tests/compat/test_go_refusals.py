"""What frps answers a proxy it refuses, side by side with the real Go frps 0.65.0.

For every refusal the error text frps sends in NewProxyResp (frpc logs ``[RUNID] [NAME] start
error: TEXT`` and shows it as the proxy's ``err`` in its admin ``/api/status``) and frps's own line
(``[RUNID] new proxy [NAME] type [TYPE] error: TEXT``) must be Go's, word for word, and the client's
other proxies must go on working:

* duplicate names (across clients), a remote port used by another proxy, by another process, or
  outside ``allowPorts`` (tcp and udp), custom domain conflicts (same domain, same domain and
  location, same ``routeByHTTPUser``; another user is no conflict), custom domains under
  ``subDomainHost``, subdomains with ``.`` or ``*``, tcp groups with another key or port;
* ``maxPortsPerClient``, a subdomain when frps has no ``subDomainHost``, http/https/tcpmux
  proxies when frps has no port for them;
* through a raw client (Go frpc refuses these in its own config): an unknown proxy type, a tcpmux
  multiplexer other than ``httpconnect`` (or none), invalid annotation keys, and Go's order of the
  checks: the proxy's own config is validated before the quota and the name are looked at.

Each table is checked against Go's own frps in the ``go`` runs. One deliberate difference
(README "frps's refusals of a proxy name the port and the rule"): our frps appends the port and
``allowPorts`` to Go's ``port not allowed`` / ``port already used`` (Go's words first, then ``: ``).
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from typing import Any

import pytest
from support.admin import AdminClient
from support.procs import (
    PAIRINGS,
    TEST_STRING,
    block,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
    udp_proxy,
    wait_port,
)
from support.waits import frame, poll

from aiofrp.proto.crypto import CFBDecryptor, CFBEncryptor, auth_key, derive_key

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "refusals-token"
START_ERROR = re.compile(r"\[([^\]\s]+)\] start error: (.*)$", re.MULTILINE)
FRPS_ERROR = re.compile(r"new proxy \[([^\]]*)\] type \[(\w+)\] error: (.*)$", re.MULTILINE)
# Go's words that our frps completes with the port and the rule ("port not allowed: 7001 is not in ...")
DETAILED = ("port not allowed", "port already used")


def _same(ours: str, go: str, frps_impl: str) -> bool:
    if ours == go:
        return True
    return frps_impl == "ours" and any(go.endswith(w) for w in DETAILED) and ours.startswith(go + ": ")


def _vhost(kind: str, name: str, local_port: int, **keys: Any) -> str:
    return block("proxies", name=name, type=kind, localIP="127.0.0.1", localPort=local_port, **keys)


def _group(name: str, local_port: int, port: int, key: str) -> str:
    keys: dict[str, Any] = {"loadBalancer.group": "g", "loadBalancer.groupKey": key}
    return tcp_proxy(name, local_port, port, **keys)


def _frps(frp, impl: str, port: int, extra: str, **keys: Any):
    frps = frp.start(impl, "frps", frps_config(port, token=TOKEN, extra=extra, **keys))
    wait_port(port, 10)
    return frps


def _start_errors(frpc) -> dict[str, str]:
    return {m[1]: m[2] for m in START_ERROR.finditer(frpc.log_text())}


def _frps_errors(frps) -> dict[str, tuple[str, str]]:
    return {m[1]: (m[2], m[3]) for m in FRPS_ERROR.finditer(frps.log_text())}


def _all_of(names: dict[str, str], get):
    """A poll function: ``get()`` once it has every name of ``names``."""
    def fn():
        got = get()
        return got if set(names) <= set(got) else None
    return fn


def _check(frps_impl: str, frpc, frps, want: dict[str, str], types: dict[str, str], timeout: float = 20) -> None:
    """frpc logged ``want`` (name -> Go's text) as start errors, frps the same (and the types) as its errors."""
    got = poll(_all_of(want, lambda: _start_errors(frpc)), timeout, f"start errors of {sorted(want)}")
    bad: dict[str, Any] = {n: (got[n], w) for n, w in want.items() if not _same(got[n], w, frps_impl)}
    assert not bad, f"frpc's start errors (ours, Go's): {bad}"
    logged = poll(_all_of(want, lambda: _frps_errors(frps)), 5, "frps's error lines")
    bad = {n: (logged[n], (types[n], w)) for n, w in want.items()
           if logged[n][0] != types[n] or not _same(logged[n][1], w, frps_impl)}
    assert not bad, f"frps's error lines (ours, Go's): {bad}"


@pytest.mark.parametrize(("frps_impl", "frpc_impl"), PAIRINGS)
def test_refusals_side_by_side(frp, echo_server, frps_impl: str, frpc_impl: str) -> None:
    """Refusals of ports, names, domains and groups; the same text in frpc's log, its admin API and
    frps's log, and the client's other proxies still work."""
    echo = echo_server.port
    p = {k: free_port() for k in ("ok1", "ok2", "ok3", "dup", "busy", "out", "g", "gother", "udup", "ubusy", "uout")}
    allowed = [v for k, v in p.items() if k not in ("out", "uout")]
    busy = socket.create_server(("127.0.0.1", p["busy"]))  # another process's port (Go: "port unavailable")
    ubusy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ubusy.bind(("127.0.0.1", p["ubusy"]))
    try:
        bind, http, https, mux, admin = (free_port() for _ in range(5))
        extra = "allowPorts = [" + ", ".join(f"{{ single = {v} }}" for v in allowed) + "]\n"
        frps = _frps(frp, frps_impl, bind, extra, vhostHTTPPort=http, vhostHTTPSPort=https,
                     tcpmuxHTTPConnectPort=mux, subDomainHost="example.com", **{"transport.maxPoolCount": 1})
        first = frp.start(frpc_impl, "frpc", frpc_config(
            bind,
            tcp_proxy("t1", echo, p["ok1"]), tcp_proxy("tdup0", echo, p["dup"]), udp_proxy("udup0", echo, p["udup"]),
            _vhost("http", "h1", echo, customDomains=["a.test"]),
            _vhost("http", "hl", echo, customDomains=["b.test"], locations=["/x"]),
            _vhost("http", "hu", echo, customDomains=["c.test"], routeByHTTPUser="u1"),
            _vhost("https", "s1", echo, customDomains=["s.test"]),
            _vhost("tcpmux", "m1", echo, customDomains=["m.test"], multiplexer="httpconnect"),
            _group("g1", echo, p["g"], "k"),
            token=TOKEN))
        first.wait_for_proxies("t1", "tdup0", "udup0", "h1", "hl", "hu", "s1", "m1", "g1", timeout=20)

        want = {
            "t1": "proxy [t1] already exists",  # across clients
            "tdup": "port already used",
            "tbusy": "port unavailable",
            "tout": "port not allowed",
            "udup": f"acquire port {p['udup']} error: port already used",
            "ubusy": f"acquire port {p['ubusy']} error: port unavailable",
            "uout": f"acquire port {p['uout']} error: port not allowed",
            "h1b": "router config conflict",
            "hlb": "router config conflict",
            "hub": "router config conflict",
            "s1b": "router config conflict",
            "m1b": "router config conflict",
            "subin": "custom domain [x.example.com] should not belong to subdomain host [example.com]",
            "subins": "custom domain [y.example.com] should not belong to subdomain host [example.com]",
            "subdot": "'.' and '*' are not supported in subdomain",
            "substar": "'.' and '*' are not supported in subdomain",
            # the name is taken too, but Go validates the proxy's config before it looks at the name
            "h1": "'.' and '*' are not supported in subdomain",
            "g1b": "group auth failed",
            "g1c": "group should have same remote port",
        }
        types = (dict.fromkeys(want, "tcp") | dict.fromkeys(("udup", "ubusy", "uout"), "udp")
                 | dict.fromkeys(("h1b", "hlb", "hub", "subin", "subdot", "substar", "h1"), "http")
                 | {"s1b": "https", "subins": "https", "m1b": "tcpmux"})
        # poolCount above frps's transport.maxPoolCount: no refusal, frps takes its maximum (as Go)
        client_keys: dict[str, Any] = {"transport.poolCount": 5, "webServer.addr": "127.0.0.1", "webServer.port": admin}
        second = frp.start(frpc_impl, "frpc", frpc_config(
            bind,
            tcp_proxy("good", echo, p["ok2"]),
            tcp_proxy("t1", echo, p["ok3"]), tcp_proxy("tdup", echo, p["dup"]), tcp_proxy("tbusy", echo, p["busy"]),
            tcp_proxy("tout", echo, p["out"]),
            udp_proxy("udup", echo, p["udup"]), udp_proxy("ubusy", echo, p["ubusy"]), udp_proxy("uout", echo, p["uout"]),
            _vhost("http", "h1b", echo, customDomains=["a.test"]),
            _vhost("http", "hlb", echo, customDomains=["b.test"], locations=["/x"]),
            _vhost("http", "hub", echo, customDomains=["c.test"], routeByHTTPUser="u1"),
            _vhost("http", "huc", echo, customDomains=["c.test"], routeByHTTPUser="u2"),  # another user: no conflict
            _vhost("https", "s1b", echo, customDomains=["s.test"]),
            _vhost("tcpmux", "m1b", echo, customDomains=["m.test"], multiplexer="httpconnect"),
            _vhost("http", "subin", echo, customDomains=["x.example.com"]),
            _vhost("https", "subins", echo, customDomains=["y.example.com"]),
            _vhost("http", "subdot", echo, subdomain="a.b"),
            _vhost("http", "substar", echo, subdomain="*"),
            _vhost("http", "h1", echo, subdomain="a.b"),
            _group("g1b", echo, p["g"], "wrong"),
            _group("g1c", echo, p["gother"], "k"),
            token=TOKEN, **client_keys))
        second.wait_for_proxies("good", "huc", timeout=20)
        _check(frps_impl, second, frps, want, types)

        # frpc's admin API shows the same text as the proxy's err
        admin_api = AdminClient(admin)

        def errors_shown() -> dict[str, dict[str, Any]] | None:
            st = admin_api.status()
            return st if all(st.get(n, {}).get("err") for n in want) else None

        status = poll(errors_shown, 10, "errors in frpc's /api/status")
        bad = {n: (status[n]["status"], status[n]["err"]) for n, w in want.items()
               if status[n]["status"] != "start error" or not _same(status[n]["err"], w, frps_impl)}
        assert not bad, bad
        assert status["good"]["status"] == "running" and status["good"]["err"] == ""

        # the client's other proxies, and the first client's, still work
        assert tcp_roundtrip(p["ok2"], frame(TEST_STRING), 5) == frame(TEST_STRING)
        assert tcp_roundtrip(p["g"], frame(TEST_STRING), 5) == frame(TEST_STRING)
        assert "start error" not in first.log_text()
    finally:
        busy.close()
        ubusy.close()


@pytest.mark.parametrize(("frps_impl", "frpc_impl"), PAIRINGS)
def test_quota_and_features_frps_lacks(frp, echo_server, frps_impl: str, frpc_impl: str) -> None:
    """maxPortsPerClient (tcp, and udp in another client), a subdomain without subDomainHost, https/tcpmux without their
    ports; then an frps without vhostHTTPPort and an http proxy."""
    echo = echo_server.port
    bind, http = free_port(), free_port()
    frps = _frps(frp, frps_impl, bind, "", vhostHTTPPort=http, maxPortsPerClient=1)
    # Go frpc sends its proxies in no set order: one of each pair gets the port, the other is refused
    frpc = frp.start(frpc_impl, "frpc", frpc_config(
        bind,
        tcp_proxy("q1", echo, free_port()), tcp_proxy("q2", echo, 0),
        _vhost("http", "qh", echo, subdomain="x"),
        _vhost("https", "qs", echo, customDomains=["s.test"]),
        _vhost("tcpmux", "qm", echo, customDomains=["m.test"], multiplexer="httpconnect"),
        block("proxies", name="st", type="stcp", secretKey="sk", localIP="127.0.0.1", localPort=echo),
        token=TOKEN))
    frpc_udp = frp.start(frpc_impl, "frpc", frpc_config(
        bind, udp_proxy("u1", echo, free_port()), udp_proxy("u2", echo, 0), token=TOKEN))
    frpc.wait_for_proxies("st", timeout=20)
    for client, pair in ((frpc, ("q1", "q2")), (frpc_udp, ("u1", "u2"))):
        started = client.wait_for_log(rf"\[({'|'.join(pair)})\] start proxy success", 20)[1]
        [refused] = [n for n in pair if n != started]
        kind = "tcp" if refused.startswith("q") else "udp"
        _check(frps_impl, client, frps, {refused: "exceed the max_ports_per_client"}, {refused: kind})
    want = {
        "qh": "subdomain is not supported because this feature is not enabled in server",
        "qs": "type [https] not supported when vhost https port is not set",
        "qm": "tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server",
    }
    _check(frps_impl, frpc, frps, want, {"qh": "http", "qs": "https", "qm": "tcpmux"})

    bind2 = free_port()
    frps2 = _frps(frp, frps_impl, bind2, "")
    remote = free_port()
    frpc2 = frp.start(frpc_impl, "frpc", frpc_config(
        bind2, _vhost("http", "nh", echo, customDomains=["a.test"]), tcp_proxy("nt", echo, remote), token=TOKEN))
    frpc2.wait_for_proxies("nt", timeout=20)
    _check(frps_impl, frpc2, frps2, {"nh": "type [http] not supported when vhost http port is not set"},
           {"nh": "http"})
    assert tcp_roundtrip(remote, frame(TEST_STRING), 5) == frame(TEST_STRING)


# -- a raw client: NewProxy messages Go frpc would not send -------------------------------------------


class RawClient:
    """Logs in over plain TCP (frps with transport.tcpMux = false), then sends NewProxy messages on
    the encrypted control connection and reads their NewProxyResp."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.sock.settimeout(10)
        ts = int(time.time())
        self.buf = b""
        self.dec: CFBDecryptor | None = None
        self.sock.sendall(self._frame(b"o", {
            "version": "0.65.0", "hostname": "", "os": "linux", "arch": "amd64", "user": "",
            "privilege_key": auth_key(token, ts), "timestamp": ts, "run_id": "", "metas": {}, "pool_count": 0}))
        kind, body = self._read()
        assert kind == b"1" and not body.get("error"), body
        key = derive_key(token)
        self.enc, self.dec = CFBEncryptor(key), CFBDecryptor(key)
        rest, self.buf = self.buf, b""
        self.buf = self.dec.decrypt(rest) if rest else b""

    @staticmethod
    def _frame(kind: bytes, body: dict) -> bytes:
        data = json.dumps(body).encode()
        return kind + struct.pack(">q", len(data)) + data

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("frps closed the control connection")
        self.buf += self.dec.decrypt(data) if self.dec is not None else data

    def _read(self) -> tuple[bytes, dict]:
        while len(self.buf) < 9:
            self._more()
        (n,) = struct.unpack(">q", self.buf[1:9])
        while len(self.buf) < 9 + n:
            self._more()
        kind, body, self.buf = self.buf[:1], json.loads(self.buf[9:9 + n]), self.buf[9 + n:]
        return kind, body

    def new_proxy(self, **body: Any) -> dict:
        self.sock.sendall(self.enc.encrypt(self._frame(b"p", body)))
        while True:
            kind, resp = self._read()
            if kind == b"2":  # NewProxyResp (ReqWorkConn and the like are skipped)
                return resp

    def close(self) -> None:
        self.sock.close()


_NAME_PART = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
              "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
              "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
# (NewProxy fields, Go's error: "" when accepted); sent in this order on one control connection
RAW_CASES: list[tuple[dict[str, Any], str]] = [
    ({"proxy_name": "u1", "proxy_type": "bogus"}, "unknown proxy type: bogus"),
    ({"proxy_name": "m1", "proxy_type": "tcpmux", "multiplexer": "foo", "custom_domains": ["a.test"]},
     "unknown multiplexer [foo]"),
    ({"proxy_name": "m2", "proxy_type": "tcpmux", "custom_domains": ["a.test"]}, "unknown multiplexer []"),
    # the domains are validated before the multiplexer is looked at
    ({"proxy_name": "m3", "proxy_type": "tcpmux", "multiplexer": "foo", "subdomain": "a.b"},
     "'.' and '*' are not supported in subdomain"),
    ({"proxy_name": "m4", "proxy_type": "tcpmux", "multiplexer": "httpconnect", "custom_domains": ["a.test"]},
     "tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server"),
    ({"proxy_name": "t1", "proxy_type": "tcp"}, ""),
    # t1 exists and the quota (1) is used up: the config is still validated first, then the quota
    ({"proxy_name": "t1", "proxy_type": "http", "custom_domains": ["a.test"]},
     "type [http] not supported when vhost http port is not set"),
    ({"proxy_name": "t1", "proxy_type": "tcpmux", "multiplexer": "httpconnect", "custom_domains": ["a.test"]},
     "tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server"),
    ({"proxy_name": "t1", "proxy_type": "tcp", "annotations": {"-bad": "x"}},
     f"annotation key -bad is invalid: name part {_NAME_PART}"),
    ({"proxy_name": "t1", "proxy_type": "tcp"}, "exceed the max_ports_per_client"),
    ({"proxy_name": "s1", "proxy_type": "stcp", "sk": "x", "annotations": {"ex.com/ok": "1", "UPPER/Name": "2"}}, ""),
    ({"proxy_name": "s1", "proxy_type": "stcp", "sk": "x"}, "proxy [s1] already exists"),
    ({"proxy_name": "s2", "proxy_type": "stcp", "annotations": {"/x": "1"}},
     "annotation key /x is invalid: prefix part must be non-empty"),
    ({"proxy_name": "s3", "proxy_type": "xtcp", "annotations": {"a/b/c": "1"}},
     (f"annotation key a/b/c is invalid: a qualified name {_NAME_PART} with an optional DNS subdomain prefix and '/' "
      "(e.g. 'example.com/MyName')")),
    ({"proxy_name": "s4", "proxy_type": "sudp", "annotations": {"Bad_Prefix.com/x": "1"}},
     ("annotation key Bad_Prefix.com/x is invalid: prefix part a lowercase RFC 1123 subdomain must consist of lower "
      "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
      "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")),
    ({"proxy_name": "s5", "proxy_type": "stcp", "annotations": {"x" * 64: "1"}},
     f"annotation key {'x' * 64} is invalid: name part must be no more than 63 characters"),
    ({"proxy_name": "s6", "proxy_type": "stcp", "annotations": {"x/": "1"}},
     ("annotation key x/ is invalid: name part must be non-empty\n"
      f"annotation key x/ is invalid: name part {_NAME_PART}")),
]


@pytest.mark.parametrize("frps_impl", ["go", "ours"])
def test_raw_new_proxy_refusals(frp, frps_impl: str) -> None:
    bind = free_port()
    frps = _frps(frp, frps_impl, bind, "", tcp_mux=False, maxPortsPerClient=1, subDomainHost="example.com")
    client = RawClient(bind, TOKEN)
    try:
        got = [(body["proxy_name"], client.new_proxy(**body).get("error", "")) for body, _ in RAW_CASES]
    finally:
        client.close()
    want = [(body["proxy_name"], err) for body, err in RAW_CASES]
    assert got == want
    # frps logs each refusal with its type and the text; ours escapes a newline in a line (a client's
    # annotation key must not forge log lines; Go writes it raw)
    log = frps.log_text()
    for body, err in RAW_CASES:
        if err:
            line = f"new proxy [{body['proxy_name']}] type [{body['proxy_type']}] error: {err}"
            assert (line.replace("\n", "\\n") if frps_impl == "ours" else line) in log, line
