"""Config texts shared by e2e and compat tests: a legacy INI pair and a Go-template frpc file."""

from __future__ import annotations

LEGACY_FRPS = """\
[common]
  bind_addr = 127.0.0.1
  bind_port = {bind}
  token = legacy-token
  max_pool_count = 3
"""

LEGACY_FRPC = """\
# a legacy frpc.ini, indented as frp's own harness writes them
[common]
  server_addr = 127.0.0.1
  server_port = {bind}
  token = legacy-token
  login_fail_exit = false
  pool_count = 2

[plain]
  type = tcp
  local_ip = 127.0.0.1
  local_port = {echo}
  remote_port = {r1}

[secure]
  type = tcp
  local_port = {echo}
  remote_port = {r2}
  use_encryption = true
  use_compression = true
"""

LEGACY_FRPC_RANGE = """
[range:many]
  type = tcp
  local_port = {echo},{echo}
  remote_port = {r3},{r4}
"""

TEMPLATE_FRPC = """\
serverAddr = "127.0.0.1"
serverPort = {bind}
loginFailExit = false
auth.token = "{{{{ .Envs.FRP_TEST_TOKEN }}}}"
{{{{- range $_, $v := parseNumberRangePair "{echo},{echo}" "{r1},{r2}" }}}}

[[proxies]]
name = "tcp-{{{{ $v.Second }}}}"
type = "tcp"
localPort = {{{{ $v.First }}}}
remotePort = {{{{ $v.Second }}}}
{{{{- end }}}}
"""
