"""frp's full example configs (every documented key) give the same struct from TOML, JSON and YAML."""

from __future__ import annotations

import functools
import json

import pytest
import yaml
from support.examples import EXAMPLES

from aiofrp.config import parse_client_config, parse_server_config, to_frp_dict

parse_client_config = functools.partial(parse_client_config, refuse_unsupported=False)
parse_server_config = functools.partial(parse_server_config, refuse_unsupported=False)
CASES = [("frps_full_example.toml", parse_server_config), ("frpc_full_example.toml", parse_client_config)]

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="frp example configs not available")


@pytest.mark.parametrize(("name", "parse"), CASES, ids=[c[0] for c in CASES])
def test_full_example_round_trips_through_every_format(name: str, parse) -> None:
    cfg = parse((EXAMPLES / name).read_text(), name, resolve_token_source=False)
    data = to_frp_dict(cfg)
    as_json = json.dumps(data, indent=2)
    as_yaml = yaml.safe_dump(data, sort_keys=False)
    assert parse(as_json, "x.json", resolve_token_source=False) == cfg
    assert parse(as_yaml, "x.yaml", resolve_token_source=False) == cfg
    # and without extensions: detected by content
    assert parse(as_json, "x", resolve_token_source=False) == cfg
    assert parse(as_yaml, "x", resolve_token_source=False) == cfg


@pytest.mark.parametrize(("name", "parse"), CASES, ids=[c[0] for c in CASES])
def test_full_example_sets_most_keys(name: str, parse) -> None:
    """The example is a real 'every key' file: it departs from the defaults in many places."""
    cfg = parse((EXAMPLES / name).read_text(), name, resolve_token_source=False)

    def leaves(d: object) -> int:
        if isinstance(d, dict):
            return sum(leaves(v) for v in d.values())
        if isinstance(d, list):
            return sum(leaves(v) for v in d) or 1
        return 1

    assert leaves(to_frp_dict(cfg)) >= 20
