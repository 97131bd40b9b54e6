"""server/sshgw: the gateway command (pflag's rules and texts, cobra's usage), the NewProxy it
makes, and the host/authorized key files. Texts marked "Go" were captured from Go frps 0.65."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import asyncssh
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.config.server import SSHTunnelGateway
from aiofrp.server.sshgw import load_authorized_keys, load_host_key
from aiofrp.server.sshgw.command import CommandError, HelpRequested, parse, usage
from aiofrp.server.sshgw.tunnel import success_info


def error_of(payload: str) -> str:
    with pytest.raises(CommandError) as e:
        parse(payload)
    return str(e.value)


@pytest.mark.parametrize(("payload", "text"), [
    ("foo", "invalid proxy type: foo, support types: [tcp http https tcpmux stcp]"),
    ("", "invalid proxy type: , support types: [tcp http https tcpmux stcp]"),
    ("udp --remote_port 1", "invalid proxy type: udp, support types: [tcp http https tcpmux stcp]"),
    ("tcp --bogus 1", "unknown flag: --bogus"),
    ("tcp --custom_domain a", "unknown flag: --custom_domain"),  # http's flag, not tcp's
    ("tcp -x", "unknown shorthand flag: 'x' in -x"),
    ("tcp -xyz", "unknown shorthand flag: 'x' in -xyz"),
    ("tcp --remote_port abc", ('invalid argument "abc" for "-r, --remote-port" flag: '
                               'strconv.ParseInt: parsing "abc": invalid syntax')),
    ("tcp --remote_port", "flag needs an argument: --remote_port"),
    ("tcp -r", "flag needs an argument: 'r' in -r"),
    ("tcp --metadatas x", 'invalid argument "x" for "--metadatas" flag: x must be formatted as key=value'),
    ("tcp ---x", "bad flag syntax: ---x"),
    ("tcp --=x", "bad flag syntax: --=x"),
    ("tcp -r 99999999999999999999", ('invalid argument "99999999999999999999" for "-r, --remote-port" flag: '
                                     'strconv.ParseInt: parsing "99999999999999999999": value out of range')),
])
def test_errors_are_pflags(payload: str, text: str) -> None:
    assert error_of(payload) == text


def test_flag_forms() -> None:
    cmd = parse("tcp --remote_port=9090 -n x -u bob --metadatas a=b,c --annotations k=v -t tok extra")
    assert (cmd.remote_port, cmd.proxy_name, cmd.user, cmd.token) == (9090, "x", "bob", "tok")
    assert cmd.metas == {"a": "b,c"}  # one "=": the whole value is one pair (pflag)
    assert cmd.annotations == {"k": "v"}
    assert parse("tcp -r9090").remote_port == 9090
    assert parse("tcp -r=9090").remote_port == 9090
    assert parse("tcp -r 0x10").remote_port == 16  # strconv.ParseInt(s, 0, 64)
    assert parse("tcp -r 010").remote_port == 8
    assert parse("tcp -- -r 5").remote_port == 0  # "--" ends the flags
    assert parse("tcp  -r 5").remote_port == 5  # an empty word is positional
    cmd = parse("http -d a.com,b.com --custom_domain c.com --sd s --locations /a,/b --http_user u --http_pwd p "
                "--host_header_rewrite h")
    assert cmd.custom_domains == ["a.com", "b.com", "c.com"]
    assert (cmd.subdomain, cmd.locations, cmd.http_user, cmd.http_pwd, cmd.host_header_rewrite) == (
        "s", ["/a", "/b"], "u", "p", "h")
    cmd = parse('stcp --sk abc --allow-users="*",bob')
    assert (cmd.sk, cmd.allow_users) == ("abc", ["*", "bob"])  # CSV: the quotes go (as Go's e2e test)
    assert parse("tcp --metadatas a=1,b=2 --metadatas c=3").metas == {"a": "1", "b": "2", "c": "3"}


def test_generated_name() -> None:
    assert parse("tcp", rand_id="0123abcd").proxy_name == "sshtunnel-tcp-0123abcd"
    name = parse("https").proxy_name
    assert name.startswith("sshtunnel-https-") and len(name) == len("sshtunnel-https-") + 8


def test_new_proxy_is_what_go_frpc_sends() -> None:
    req = parse("tcp -r 9000 -n t").new_proxy("alice")
    assert (req.proxy_name, req.proxy_type, req.remote_port, req.bandwidth_limit_mode) == (
        "alice.t", "tcp", 9000, "")  # Go's MarshalToMsg leaves out the default "client"
    assert parse("tcp -n t").new_proxy("").proxy_name == "t"
    req = parse("tcpmux --mux httpconnect -d m.com --http_user u").new_proxy("")
    assert (req.multiplexer, req.custom_domains, req.http_user) == ("httpconnect", ["m.com"], "u")
    req = parse("https -d s.com --sd x").new_proxy("")
    assert (req.custom_domains, req.subdomain, req.http_user) == (["s.com"], "x", "")


GO_TCP_USAGE = """Usage:
  ssh v0@{address} [command] [flags]

Flags:
      --annotations stringToString   annotation key-value pairs (e.g., key1=value1,key2=value2) (default [])
      --metadatas stringToString     metadata key-value pairs (e.g., key1=value1,key2=value2) (default [])
  -n, --proxy-name string            proxy name
  -r, --remote-port int              remote port
  -t, --token string                 auth token
  -u, --user string                  user
"""


def test_usage_is_cobras() -> None:
    assert usage("tcp") == GO_TCP_USAGE  # Go
    for payload in ("tcp --help", "tcp -h", "tcp --remote_port 1 --help", "tcp -hx"):
        with pytest.raises(HelpRequested) as e:
            parse(payload)
        assert e.value.usage == GO_TCP_USAGE
    lines = usage("stcp").splitlines()
    assert lines[4] == "      --allow-users strings          allow visitor users"  # Go


def test_success_info() -> None:
    assert success_info("", "foo", "tcp", ":17090") == (  # Go, before writeToClient's "\n"
        "\nfrp (via SSH) (Ctrl+C to quit)\n\nUser: \nProxyName: foo\nType: tcp\nRemoteAddress: :17090\n"
    )


def test_host_key_generated_kept_or_read(tmp_path: Path) -> None:
    path = tmp_path / "k"
    key = load_host_key(SSHTunnelGateway(auto_gen_private_key_path=str(path)))
    assert key.algorithm == b"ssh-rsa"
    assert path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_host_key(SSHTunnelGateway(auto_gen_private_key_path=str(path)))
    assert again.public_data == key.public_data
    path.write_bytes(b"")  # empty: generated again (Go)
    assert load_host_key(SSHTunnelGateway(auto_gen_private_key_path=str(path))).public_data != key.public_data
    own = tmp_path / "own"
    own.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    assert load_host_key(SSHTunnelGateway(private_key_file=str(own))).algorithm == b"ssh-ed25519"
    # Go's texts first, then the config key that named the file
    with pytest.raises(OSError, match=r"^open .*missing: no such file or directory \(sshTunnelGateway.privateKeyFile\)$"):
        load_host_key(SSHTunnelGateway(private_key_file=str(tmp_path / "missing")))  # not generated (Go)
    (tmp_path / "bad").write_text("not a key")
    with pytest.raises(ValueError, match=r"^ssh: no key found \(sshTunnelGateway.privateKeyFile = .*bad\)$"):
        load_host_key(SSHTunnelGateway(private_key_file=str(tmp_path / "bad")))
    with pytest.raises(OSError, match=r"^read .*: is a directory \(sshTunnelGateway.privateKeyFile\)$"):
        load_host_key(SSHTunnelGateway(private_key_file=str(tmp_path)))
    with pytest.raises(OSError, match=r"^open .*/no/dir/k: no such file or directory \(sshTunnelGateway.autoGen"):
        load_host_key(SSHTunnelGateway(auto_gen_private_key_path=str(tmp_path / "no" / "dir" / "k")))
    encrypted = tmp_path / "encrypted"
    encrypted.write_bytes(asyncssh.generate_private_key("ecdsa-sha2-nistp256").export_private_key("pkcs1-pem", "x"))
    with pytest.raises(ValueError, match="^ssh: this private key is passphrase protected "):
        load_host_key(SSHTunnelGateway(private_key_file=str(encrypted)))


def test_authorized_keys(tmp_path: Path) -> None:
    a = asyncssh.generate_private_key("ssh-ed25519")
    b = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "authorized_keys"
    path.write_bytes(
        b"# comment\n\n" + a.export_public_key().strip() + b" alice  \n"
        + b'no-pty,command="echo a b" ' + b.export_public_key().strip() + b"\n"
    )
    keys = load_authorized_keys(str(path))
    assert keys == {a.public_data: "alice", b.public_data: ""}
    # Go (x/crypto ParseAuthorizedKey until nothing is left): a line without a key is skipped
    # while a key follows it, but a bad line after the last key refuses the file; blank lines and
    # comments there do not (Go refuses the file for them too: README)
    path.write_bytes(b"not a key\n" + path.read_bytes())
    assert load_authorized_keys(str(path)) == keys
    path.write_bytes(a.export_public_key() + b"not a key\n")
    with pytest.raises(ValueError, match="^ssh: no key found$"):
        load_authorized_keys(str(path))
    for tail in (b"\n", b"# end\n", b"\n  \n# a\n\n"):
        path.write_bytes(a.export_public_key() + tail)
        assert load_authorized_keys(str(path)) == {a.public_data: ""}
    # the comment keeps its inner blanks; the key type word is not checked (Go)
    blob = a.export_public_key().split()[1]
    path.write_bytes(b"foo " + blob + b"  alice\tsmith \r\n")
    assert load_authorized_keys(str(path)) == {a.public_data: "alice\tsmith"}
    with pytest.raises(OSError, match="^open .*missing: no such file or directory$"):
        load_authorized_keys(os.fspath(tmp_path / "missing"))


WORDS = st.sampled_from(["tcp", "http", "https", "tcpmux", "stcp", "-", "--", "-r", "-n", "-h", "--help", "-t=",
                         "--remote_port", "--remote-port=", "--metadatas", "a=b", "a=b,c=d", '"x",y', "0x1f",
                         "-d", "--sd", "--allow-users", "--sk", "=", "---", "--=", "-rz", "\x00", "é"])


@given(st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=12))
@settings(max_examples=400, deadline=None)
def test_any_command_is_parsed_or_refused_with_text(words: list[str]) -> None:
    """Whatever an ssh user sends: a Command, the usage, or a CommandError with a one-line text."""
    try:
        cmd = parse(" ".join(words))
    except HelpRequested as e:
        assert e.usage.startswith("Usage:\n")
    except CommandError as e:
        assert str(e)
    else:
        assert cmd.proxy_type in ("tcp", "http", "https", "tcpmux", "stcp") and cmd.proxy_name
        cmd.new_proxy(cmd.user)


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_authorized_keys_file_loads_or_is_refused(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("ak") / "authorized_keys"
    path.write_bytes(data)
    try:
        load_authorized_keys(str(path))
    except ValueError:
        pass
