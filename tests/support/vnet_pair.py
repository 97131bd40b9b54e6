"""Two frpcs joined by frp's virtual network, each in a network namespace of its own, run by
``tests/e2e/test_virtual_net.py`` and ``tests/compat/test_go_virtual_net.py``.

Run as ``unshare -rn python vnet_pair.py SPEC.json`` (a user and network namespace: root inside,
nothing outside is touched). Here is namespace A, with frps and the provider frpc (an stcp proxy
with the ``virtual_net`` plugin, ``virtualNet.address = 100.86.0.1/24``); namespace B is made by
``unshare -n`` below it, joined to A by a veth pair (10.213.0.1 - 10.213.0.2), with the visitor frpc
(``virtual_net`` visitor plugin to 100.86.0.1, its own address 100.86.0.2/24). Then, from B, TCP
and UDP to services bound to 100.86.0.1 in A: the only way there is the TUN devices and the frp
connections. Prints one JSON line with what happened; every step has a deadline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

DEADLINE = 30.0
ADDR_A, ADDR_B = "100.86.0.1", "100.86.0.2"
TCP_PORT, UDP_PORT = 18000, 18001


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


def poll(what: str, check, deadline: float = DEADLINE):
    end = time.monotonic() + deadline
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.1)


def serve_tcp(sock: socket.socket) -> None:
    while True:
        try:
            conn, peer = sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            data = b""
            while len(data) < 1 << 20:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            conn.sendall(f"{peer[0]} {len(data)} ".encode() + data[-16:])


def serve_udp(sock: socket.socket) -> None:
    while True:
        try:
            data, peer = sock.recvfrom(2048)
        except OSError:
            return
        sock.sendto(b"udp " + peer[0].encode() + b" " + data, peer)


def bind_when_up(kind: int, port: int) -> socket.socket:
    def attempt() -> socket.socket | None:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((ADDR_A, port))
        except OSError:
            s.close()
            return None
        return s

    return poll(f"{ADDR_A} on A's TUN device", attempt)


CLIENT = r"""
import socket, sys, time, json, os
end = time.monotonic() + float(sys.argv[1])
payload = os.urandom(1 << 20)
out = {}
while time.monotonic() < end:
    try:
        c = socket.create_connection(("100.86.0.1", 18000), timeout=3)
        c.settimeout(10)
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
        out["tcp"] = got[:-16].decode().strip()
        out["tcp_tail_ok"] = got[-16:] == payload[-16:]
        break
    except OSError as exc:
        out["tcp_error"] = str(exc)
        time.sleep(0.3)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(1)
for _ in range(10):
    u.sendto(b"ping", ("100.86.0.1", 18001))
    try:
        out["udp"] = u.recvfrom(2048)[0].decode()
        break
    except OSError:
        pass
print(json.dumps(out))
"""


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    work = Path(spec["dir"])
    procs: list[subprocess.Popen[bytes]] = []
    result: dict[str, object] = {}
    holder = None
    try:
        sh("ip", "link", "set", "lo", "up")
        holder = subprocess.Popen(["unshare", "-n", "sleep", "120"])
        procs.append(holder)
        poll("namespace B", lambda: os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"))
        sh("ip", "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", str(holder.pid))
        sh("ip", "addr", "add", "10.213.0.1/24", "dev", "vA")
        sh("ip", "link", "set", "vA", "up")
        in_b = ["nsenter", "-t", str(holder.pid), "-n"]
        sh(*in_b, "sh", "-c", "ip link set lo up && ip addr add 10.213.0.2/24 dev vB && ip link set vB up")

        def start(name: str, argv: list[str], prefix: list[str] | None = None) -> None:
            log = open(work / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append(subprocess.Popen([*(prefix or []), *argv], stdout=log, stderr=subprocess.STDOUT, cwd=work))

        start("frps", [*spec["frps"], "-c", str(work / "frps.toml")])
        poll("frps listening", lambda: socket.socket().connect_ex(("10.213.0.1", spec["bind_port"])) == 0)
        start("provider", [*spec["provider"], "-c", str(work / "provider.toml")])
        tcp = bind_when_up(socket.SOCK_STREAM, TCP_PORT)
        tcp.listen()
        udp = bind_when_up(socket.SOCK_DGRAM, UDP_PORT)
        threading.Thread(target=serve_tcp, args=(tcp,), daemon=True).start()
        threading.Thread(target=serve_udp, args=(udp,), daemon=True).start()
        poll("the provider's proxy", lambda: b"start proxy success" in (work / "provider.log").read_bytes())
        start("visitor", [*spec["visitor"], "-c", str(work / "visitor.toml")], prefix=in_b)
        client = subprocess.run([*in_b, sys.executable, "-c", CLIENT, str(DEADLINE)], capture_output=True,
                                timeout=DEADLINE + 20, check=False)
        result.update(json.loads(client.stdout or b"{}"))
        if client.returncode:
            result["client_stderr"] = client.stderr.decode(errors="replace")[-2000:]
        links = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, timeout=10,
                               check=False).stdout
        result["a_tun"] = [line.split()[1] for line in links.splitlines() if ADDR_A + "/24" in line]
    except Exception as exc:  # noqa: BLE001 - reported to the test, with the logs
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# -- the tests' side -------------------------------------------------------------------------------

FRPS_TOML = 'bindAddr = "10.213.0.1"\nbindPort = {port}\n'
CLIENT_TOML = ('serverAddr = "10.213.0.1"\nserverPort = {port}\nfeatureGates = {{ VirtualNet = true }}\n'
               'virtualNet.address = "{addr}/24"\n')
PROVIDER_TOML = ('[[proxies]]\nname = "vnet-server"\ntype = "stcp"\nsecretKey = "vnet-key"\n'
                 'transport.useEncryption = true\n[proxies.plugin]\ntype = "virtual_net"\n')
VISITOR_TOML = ('[[visitors]]\nname = "vnet-visitor"\ntype = "stcp"\nserverName = "vnet-server"\n'
                'secretKey = "vnet-key"\nbindPort = -1\n[visitors.plugin]\ntype = "virtual_net"\n'
                f'destinationIP = "{ADDR_A}"\n')


def namespace_prefix() -> list[str]:
    """``unshare -rn`` (a user namespace: no root needed), or ``unshare -n`` as root; the tools
    installed first where missing (Debian's iproute2 and util-linux)."""
    import shutil

    if any(shutil.which(t) is None for t in ("unshare", "nsenter", "ip")):
        subprocess.run(["apt-get", "install", "-y", "-q", "iproute2", "util-linux"],
                       check=False, capture_output=True, timeout=300)
    for prefix in (["unshare", "-rn"], ["unshare", "-n"]):
        probe = subprocess.run([*prefix, "sh", "-c", "ip link add t0 type veth peer name t1 && test -c /dev/net/tun"],
                               check=False, capture_output=True, timeout=30)
        if probe.returncode == 0:
            return prefix
    raise RuntimeError("cannot make a network namespace with veth and TUN here: "
                       + probe.stderr.decode(errors="replace").strip())


def run_pair(work: Path, frps: list[str], provider: list[str], visitor: list[str], port: int = 17300) -> dict[str, object]:
    """Run the pair (commands are argv prefixes without ``-c``); the result, with the logs on failure."""
    (work / "frps.toml").write_text(FRPS_TOML.format(port=port))
    (work / "provider.toml").write_text(CLIENT_TOML.format(port=port, addr=ADDR_A) + PROVIDER_TOML)
    (work / "visitor.toml").write_text(CLIENT_TOML.format(port=port, addr=ADDR_B) + VISITOR_TOML)
    spec = work / "spec.json"
    spec.write_text(json.dumps({"dir": str(work), "frps": frps, "provider": provider, "visitor": visitor,
                                "bind_port": port}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run([*namespace_prefix(), sys.executable, __file__, str(spec)], capture_output=True,
                         timeout=DEADLINE * 3, check=False, env=env)
    lines = res.stdout.decode(errors="replace").strip().splitlines()
    result: dict[str, object] = json.loads(lines[-1]) if lines else {"error": res.stderr.decode(errors="replace")}
    result["logs"] = {p.stem: p.read_text(errors="replace")[-3000:] for p in sorted(work.glob("*.log"))}
    return result


def check(result: dict[str, object]) -> None:
    """B reached A's TCP and UDP services over the virtual network, seen as B's virtual address."""
    assert result.get("tcp") == f"{ADDR_B} {1 << 20}" and result.get("tcp_tail_ok"), result
    assert result.get("udp") == f"udp {ADDR_B} ping", result
    assert "Traceback" not in str(result["logs"]), result
