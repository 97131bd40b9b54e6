"""``frpc|frps completion SHELL`` and ``frpc|frps help [COMMAND]`` (Go's cobra gives both programs
these two commands). The bash script is run in a real bash with the words a user would have typed."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from support.procs import ours_cmd

pytestmark = pytest.mark.timeout(60)


def run(which: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ours_cmd(which), *args], check=False, capture_output=True, text=True, timeout=30)


def complete(which: str, script: str, line: str) -> list[str]:
    """What bash offers for ``line`` (its last word is the one being completed)."""
    bash = shutil.which("bash")
    assert bash, "bash is needed for this test"
    words = line.split(" ")
    program = f"""source /dev/stdin <<'EOF'
{script}
EOF
COMP_WORDS=({" ".join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}
_{which}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    out = subprocess.run([bash, "-c", program], capture_output=True, text=True, timeout=30, check=True).stdout
    return [w for w in out.splitlines() if w]


def test_bash_completion_frpc() -> None:
    r = run("frpc", "completion", "bash")
    assert r.returncode == 0 and "complete -o default -F _frpc frpc" in r.stdout
    script = r.stdout
    assert complete("frpc", script, "frpc ve") == ["verify"]
    assert complete("frpc", script, "frpc tcp --remote-") == ["--remote-port"]
    assert complete("frpc", script, "frpc stcp vi") == ["visitor"]
    assert complete("frpc", script, "frpc completion z") == ["zsh"]
    assert "--config" in complete("frpc", script, "frpc --con")
    assert "status" in complete("frpc", script, "frpc ")


def test_bash_completion_frps() -> None:
    r = run("frps", "completion", "bash")
    assert r.returncode == 0
    assert complete("frps", r.stdout, "frps --vhost-http-p") == ["--vhost-http-port"]
    assert complete("frps", r.stdout, "frps ver") == ["verify"]


def test_other_shells_and_errors() -> None:
    zsh = run("frpc", "completion", "zsh").stdout
    assert zsh.startswith("#compdef frpc") and "bashcompinit" in zsh and "_frpc()" in zsh
    fish = run("frpc", "completion", "fish").stdout
    assert "complete -c frpc -n '__fish_seen_subcommand_from tcp' -l remote-port" in fish
    assert "complete -c frpc -n __fish_use_subcommand -l config -r -F" in fish
    ps = run("frps", "completion", "powershell").stdout
    assert "Register-ArgumentCompleter -Native -CommandName 'frps'" in ps and "'--bind-port'" in ps
    usage = run("frpc", "completion")
    assert usage.returncode == 0 and "bash|zsh|fish|powershell" in usage.stdout
    # as cobra: an unknown shell prints the completion help and exits 0 (with our note on stderr)
    bad = run("frpc", "completion", "tcsh")
    assert bad.returncode == 0 and "unknown shell 'tcsh'" in bad.stderr and "Traceback" not in bad.stderr
    assert bad.stdout == usage.stdout
    extra = run("frpc", "completion", "bash", "extra")
    assert extra.returncode == 1 and 'unknown command "extra"' in extra.stderr


def test_help_command() -> None:
    assert run("frpc", "help").stdout == run("frpc", "--help").stdout
    assert run("frpc", "help", "tcp").stdout == run("frpc", "tcp", "--help").stdout
    assert run("frpc", "help", "stcp", "visitor").stdout == run("frpc", "stcp", "visitor", "--help").stdout
    assert run("frps", "help").stdout == run("frps", "--help").stdout
    # as cobra: an unknown topic is a note and the help on stderr, exit 0
    bad = run("frpc", "help", "nope")
    assert bad.returncode == 0 and "Unknown help topic [`nope`]" in bad.stderr and bad.stdout == ""
    assert run("frpc", "--help").stdout in bad.stderr
