"""``python -m aiofrp``: what aiofrp offers and how to start it."""

from __future__ import annotations

import sys

from . import version_text

HELP = f"""{version_text()}: frp (fast reverse proxy) in pure Python.

Commands (installed with the package):
  frps -c frps.toml        the server (frps --help)
  frpc -c frpc.toml        the client (frpc --help; frpc tcp|http|... for one proxy from flags)
  frp server | frp client  quick mode: one line per side, one public port (frp --help)

The same as modules: python -m aiofrp.cli.frps, python -m aiofrp.cli.frpc, python -m aiofrp.cli.frp

From Python (README "Using aiofrp from Python"):
  import aiofrp
  tunnel = aiofrp.expose(8000, server="frps.example.com:7000", token="...")
  print(tunnel.url); tunnel.close()

  async with aiofrp.Client(server_addr="frps.example.com", server_port=7000, token="...") as client:
      tunnel = await client.expose(8000)

  async with aiofrp.Server(bind_port=7000, token="...") as server: ...

help(aiofrp.Client), help(aiofrp.Server), help(aiofrp.expose) document the parameters.
"""


def main(argv: list[str] | None = None) -> int:
    """Print the help; ``--version`` prints the version."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-v", "--version"):
        print(version_text())
        return 0
    print(HELP, end="")
    return 0 if not args or args[0] in ("-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
