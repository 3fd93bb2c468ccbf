"""`pulse dev ring`: per-node configs of the 3-node ring, without starting anything."""

from __future__ import annotations

from pathlib import Path

import yaml

from devtools import cassandra as dev_cassandra
from devtools import ring
from devtools.config import DevSettings


def test_tokens_split_the_murmur3_range_evenly() -> None:
    # when
    found = ring.tokens(3)
    # then
    assert found[0] == -(2**63)
    assert found[1] - found[0] == found[2] - found[1] == 2**64 // 3
    assert found[2] + 2**64 // 3 <= 2**63


def test_each_node_listens_on_its_own_loopback_address_with_the_same_ports(
    tmp_path: Path,
) -> None:
    # given
    nodes = ring.ring_nodes(DevSettings(home=tmp_path))
    # when
    configs = [
        yaml.safe_load(dev_cassandra.render_yaml(dev_cassandra.cassandra_config(n.node, tmp_path)))
        for n in nodes
    ]
    # then: not 127.0.0.1, where the single dev node runs
    assert [c["listen_address"] for c in configs] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert [c["rpc_address"] for c in configs] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert {c["storage_port"] for c in configs} == {7000}
    assert {c["native_transport_port"] for c in configs} == {9042}
    assert {c["cluster_name"] for c in configs} == {"pulse-ring"}
    assert all(c["auto_bootstrap"] is False for c in configs)
    assert [c["initial_token"] for c in configs] == ring.tokens(3)
    seeds = configs[0]["seed_provider"][0]["parameters"][0]["seeds"]
    assert seeds == "127.0.0.2:7000,127.0.0.3:7000,127.0.0.4:7000"


def test_a_ring_node_runs_without_jmx_with_its_token_and_a_small_heap(tmp_path: Path) -> None:
    # given
    node = ring.ring_nodes(DevSettings(home=tmp_path))[1].node
    # when
    command = dev_cassandra.server_command("java", node, tmp_path, tmp_path, tmp_path, tmp_path)
    # then
    assert not [arg for arg in command if arg.startswith("-Dcassandra.jmx")]
    assert f"-Dcassandra.initial_token={ring.tokens(3)[1]}" in command
    assert "-Xmx448m" in command


def test_status_without_pid_files_reports_every_node_stopped(tmp_path: Path) -> None:
    # when
    found = ring.status(DevSettings(home=tmp_path))
    # then
    assert [(n.name, n.state, n.pid) for n in found] == [
        ("node1", "stopped", None),
        ("node2", "stopped", None),
        ("node3", "stopped", None),
    ]
