"""server/workers/dashboard.py: the workers' Prometheus texts merged into one."""

from __future__ import annotations

from aiofrp.server.workers.dashboard import merge_metrics

W1 = """# HELP frp_server_client_counts The current client counts of frps
# TYPE frp_server_client_counts gauge
frp_server_client_counts 2.0
# HELP frp_server_proxy_counts The current proxy counts
# TYPE frp_server_proxy_counts gauge
frp_server_proxy_counts{type="tcp"} 3.0
process_start_time_seconds 100.5
aiofrp_event_loop_lag_seconds 0.25
frp_server_traffic_in{name="a",type="tcp"} 10
"""
W2 = """# HELP frp_server_client_counts The current client counts of frps
# TYPE frp_server_client_counts gauge
frp_server_client_counts 1.0
# HELP frp_server_proxy_counts The current proxy counts
# TYPE frp_server_proxy_counts gauge
frp_server_proxy_counts{type="tcp"} 1.0
frp_server_proxy_counts{type="udp"} 4.0
process_start_time_seconds 99.5
aiofrp_event_loop_lag_seconds 0.5
frp_server_traffic_in{name="b",type="tcp"} 7
"""


def test_series_added_up_comments_once() -> None:
    out = merge_metrics([W1, W2]).splitlines()
    assert out.count("# TYPE frp_server_client_counts gauge") == 1
    assert "frp_server_client_counts 3" in out
    assert 'frp_server_proxy_counts{type="tcp"} 4' in out
    assert 'frp_server_proxy_counts{type="udp"} 4' in out
    assert 'frp_server_traffic_in{name="a",type="tcp"} 10' in out
    assert 'frp_server_traffic_in{name="b",type="tcp"} 7' in out
    # the first of the start times, the worst lag
    assert "process_start_time_seconds 99.5" in out
    assert "aiofrp_event_loop_lag_seconds 0.5" in out


def test_one_worker_unchanged_but_for_number_format() -> None:
    assert merge_metrics([W1]).splitlines()[2] == "frp_server_client_counts 2"
    assert merge_metrics([]) == "\n"
