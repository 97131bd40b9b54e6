"""``frpc|frps completion bash|zsh|fish|powershell`` and ``frpc|frps help [COMMAND]``, the two
commands Go's cobra gives both programs.

The scripts complete the commands, then the flags of the command typed (``frpc tcp --re`` →
``--remote-port``), and file names after the flags that take a file. They are built from the
programs' own argparse parsers, so they list what the programs accept; unlike cobra's they do not
call the program back while completing (nothing to complete needs it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .common import die

FILE_FLAGS = ("-c", "--config", "-o", "--output", "--config-dir", "--config_dir", "--log-file", "--log_file",
              "--dashboard-tls-cert-file", "--dashboard-tls-key-file", "--tls-cert-file", "--tls-key-file",
              "--tls-trusted-ca-file")


def flag_names(parser: argparse.ArgumentParser) -> list[str]:
    """The option strings of ``parser`` (help included), in order."""
    names: list[str] = []
    for action in parser._actions:  # argparse has no public list of them
        names.extend(s for s in action.option_strings if s not in names)
    return names


Spec = dict[str, list[str]]
"""First word (a command, or "" before one) -> the words that may follow it."""


def bash(prog: str, spec: Spec) -> str:
    cases = "".join(f'        {cmd}) words="{" ".join(words)}";;\n' for cmd, words in spec.items() if cmd)
    files = "|".join(FILE_FLAGS)
    fn = "_" + prog.replace("-", "_")
    return f"""# bash completion for {prog} (aiofrp): source <({prog} completion bash)
{fn}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" words
    case "$prev" in
        {files}) COMPREPLY=($(compgen -f -- "$cur")); return;;
    esac
    if [ "$COMP_CWORD" -eq 1 ]; then
        words="{" ".join(spec[""])}"
    else
        case "${{COMP_WORDS[1]}}" in
{cases}        *) words="{" ".join(w for w in spec[""] if w.startswith("-"))}";;
        esac
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F {fn} {prog}
"""


def zsh(prog: str, spec: Spec) -> str:
    return f"""#compdef {prog}
# zsh completion for {prog} (aiofrp): source <({prog} completion zsh)
autoload -U +X bashcompinit && bashcompinit
{bash(prog, spec)}"""


def fish(prog: str, spec: Spec) -> str:
    commands = [w for w in spec[""] if not w.startswith("-")]
    lines = [f"# fish completion for {prog} (aiofrp): {prog} completion fish | source",
             f"complete -c {prog} -f"]
    lines += [f"complete -c {prog} -n __fish_use_subcommand -a {cmd}" for cmd in commands]
    for cmd, words in spec.items():
        cond = "__fish_use_subcommand" if not cmd else f"'__fish_seen_subcommand_from {cmd}'"
        for w in words:
            if w.startswith("--"):
                needs_file = " -r -F" if w in FILE_FLAGS else ""
                lines.append(f"complete -c {prog} -n {cond} -l {w[2:]}{needs_file}")
            elif w.startswith("-") and len(w) == 2:
                lines.append(f"complete -c {prog} -n {cond} -s {w[1:]}")
            elif cmd:
                lines.append(f"complete -c {prog} -n {cond} -a {w}")
    return "\n".join(lines) + "\n"


def powershell(prog: str, spec: Spec) -> str:
    entries = "\n".join(f"    '{cmd}' = @({', '.join(repr(w) for w in words)})" for cmd, words in spec.items())
    return f"""# powershell completion for {prog} (aiofrp): {prog} completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName '{prog}' -ScriptBlock {{
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @{{
{entries}
    }}
    $elements = $commandAst.CommandElements
    $first = ''
    if ($elements.Count -gt 2 -or ($elements.Count -eq 2 -and $wordToComplete -eq '')) {{
        $first = $elements[1].ToString()
    }}
    $candidates = $words[$first]
    if ($null -eq $candidates) {{ $candidates = $words[''] | Where-Object {{ $_ -like '-*' }} }}
    $candidates | Where-Object {{ $_ -like "$wordToComplete*" }} | ForEach-Object {{
        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
    }}
}}
"""


SCRIPTS: dict[str, Callable[[str, Spec], str]] = {"bash": bash, "zsh": zsh, "fish": fish, "powershell": powershell}
SHELLS = tuple(SCRIPTS)


def completion_command(prog: str, argv: list[str], spec: Spec) -> int:
    """``PROG completion [SHELL]``: the script on stdout; without a shell, the shells."""
    if argv and argv[0] in ("-h", "--help"):
        argv = []
    unknown = bool(argv) and argv[0] not in SCRIPTS
    if unknown:  # as cobra: an unknown shell gets this help, and exit 0
        print(f"{prog} completion: unknown shell {argv[0]!r} (one of {', '.join(SHELLS)})", file=sys.stderr)
    if not argv or unknown:
        print(f"Generate the autocompletion script for {prog} for the specified shell.\n\n"
              f"Usage:\n  {prog} completion [{'|'.join(SHELLS)}]\n\n"
              f"  bash        source <({prog} completion bash)\n"
              f"  zsh         source <({prog} completion zsh)\n"
              f"  fish        {prog} completion fish | source\n"
              f"  powershell  {prog} completion powershell | Out-String | Invoke-Expression")
        return 0
    if len(argv) > 1:
        die(f'{prog} completion {argv[0]}: unknown command "{argv[1]}"')
    print(SCRIPTS[argv[0]](prog, spec), end="")
    return 0


def help_command(prog: str, argv: list[str], main: Callable[[list[str]], int],
                 parser: argparse.ArgumentParser, commands: tuple[str, ...]) -> int:
    """``PROG help [COMMAND...]``: the help of PROG, or of that command (``PROG COMMAND --help``)."""
    if not argv or argv[0] == "help":
        parser.print_help()
        return 0
    if argv[0] not in commands:  # as cobra: a note and the help on stderr, exit 0
        print(f"Unknown help topic [`{argv[0]}`] (one of {', '.join(commands)})", file=sys.stderr)
        parser.print_help(sys.stderr)
        return 0
    return main([*argv, "--help"])
