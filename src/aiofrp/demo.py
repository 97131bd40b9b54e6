"""``make demo``: frps, frpc and a tiny local web page on loopback, reached through the tunnel.

Starts the three as real processes with ordinary frp TOML files, fetches the page through
frps's public port, prints it and the URL, then keeps running until Ctrl-C.
``DEMO_ONCE=1`` fetches, prints and exits 0.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = b"<h1>Hello from the private service, through aiofrp!</h1>\n"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(path: str, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8", errors="replace") as f:
            if rx.search(f.read()):
                return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(path, encoding="utf-8", errors="replace") as f:
        raise SystemExit(f"demo: timed out waiting for {pattern!r}; log:\n{f.read()}")


def main() -> int:
    once = os.environ.get("DEMO_ONCE", "") not in ("", "0")
    web = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    local_port = web.server_address[1]
    bind_port, remote_port = _free_port(), _free_port()
    tmp = tempfile.mkdtemp(prefix="aiofrp-demo-")
    frps_toml = os.path.join(tmp, "frps.toml")
    frpc_toml = os.path.join(tmp, "frpc.toml")
    with open(frps_toml, "w") as f:
        f.write(f'bindAddr = "127.0.0.1"\nbindPort = {bind_port}\nauth.token = "demo-token"\n')
    with open(frpc_toml, "w") as f:
        f.write(
            f'serverAddr = "127.0.0.1"\nserverPort = {bind_port}\nauth.token = "demo-token"\n\n'
            f'[[proxies]]\nname = "web"\ntype = "tcp"\nlocalIP = "127.0.0.1"\nlocalPort = {local_port}\n'
            f"remotePort = {remote_port}\n"
        )
    logs = {n: os.path.join(tmp, f"{n}.log") for n in ("frps", "frpc")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, cfg in (("frps", frps_toml), ("frpc", frpc_toml)):
            with open(logs[name], "wb") as out:
                procs.append(subprocess.Popen([sys.executable, "-m", f"aiofrp.cli.{name}", "-c", cfg],
                                              stdout=out, stderr=subprocess.STDOUT))
            if name == "frps":
                _wait_for(logs["frps"], r"frps started successfully", procs[0], 15)
        _wait_for(logs["frpc"], r"\[web\] start proxy success", procs[1], 15)
        url = f"http://127.0.0.1:{remote_port}/"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read()
        print(f"frps on 127.0.0.1:{bind_port}, frpc exposing the local web service 127.0.0.1:{local_port}")
        print(f"fetched {url} through the tunnel:\n{body.decode()}")
        if body != PAGE:
            print("demo: unexpected page content", file=sys.stderr)
            return 1
        if once:
            return 0
        print(f"open {url} in a browser; logs in {tmp}; press Ctrl-C to stop")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        web.shutdown()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
