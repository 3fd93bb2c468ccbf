"""Unit tests of `pulse dev` that need no Java, no Maven and no servers (fake executables)."""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from devtools import cassandra as dev_cassandra
from devtools import kafka as dev_kafka
from devtools import process as dev_process
from devtools import servers as devservers
from devtools.config import DevSettings
from devtools.layout import DevPaths, DevServerError
from devtools.maven import resolve_jars
from pulse.cli.dev import dev_app

FAKE_MAVEN = """#!/bin/sh
# Stands in for `mvn dependency:copy-dependencies`: counts calls, writes a jamm jar.
echo call >> "$(dirname "$0")/maven-calls"
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}" ;; esac
done
mkdir -p "$out" && touch "$out/jamm-0.4.0.jar" "$out/server.jar"
"""


def _fake_java(behaviour: str) -> str:
    """Formatting succeeds; the 'server' then behaves as told."""
    return f"""#!/bin/sh
case "$*" in *StorageTool*) exit 0 ;; esac
{behaviour}
"""


def _executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _settings(home: Path, **overrides: object) -> DevSettings:
    kafka, controller, cql, storage, jmx = _free_ports(5)
    values: dict[str, object] = {
        "home": home,
        "kafka_port": kafka,
        "kafka_controller_port": controller,
        "cql_port": cql,
        "cassandra_storage_port": storage,
        "cassandra_jmx_port": jmx,
        "maven": _executable(home.parent / "fake-mvn", FAKE_MAVEN),
    }
    values.update(overrides)
    return DevSettings.model_validate(values)


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _started_pids(messages: list[str]) -> list[int]:
    return [int(pid) for line in messages for pid in re.findall(r"^starting \w+ \(pid (\d+)", line)]


def test_a_taken_port_fails_before_anything_starts_and_names_the_setting(
    tmp_path: Path, listening_port: int
) -> None:
    # given another process listening on the CQL port
    dev = _settings(tmp_path / "home", cql_port=listening_port)
    # when
    with pytest.raises(DevServerError) as raised:
        devservers.up(dev, echo=lambda _: None)
    # then the message names the port and the variable that moves it, and nothing started
    assert f"port {listening_port} on 127.0.0.1 is already in use" in str(raised.value)
    assert "PULSE_DEV__CQL_PORT=" in str(raised.value)
    assert not (tmp_path / "maven-calls").exists()
    assert list((tmp_path / "home" / "run").glob("*.pid")) == []


def test_two_settings_sharing_a_port_are_reported(tmp_path: Path) -> None:
    # given
    dev = _settings(tmp_path / "home")
    dev = dev.model_copy(update={"kafka_controller_port": dev.kafka_port})
    # when
    with pytest.raises(DevServerError) as raised:
        devservers.up(dev, echo=lambda _: None)
    # then
    assert "PULSE_DEV__KAFKA_CONTROLLER_PORT and PULSE_DEV__KAFKA_PORT both choose" in str(
        raised.value
    )


def test_kafka_properties_carry_the_ports_data_dir_and_single_node_settings(
    tmp_path: Path,
) -> None:
    # given
    dev = DevSettings(kafka_port=19092, kafka_controller_port=19093)
    # when
    text = dev_kafka.render_properties(dev_kafka.server_properties(dev, tmp_path / "kafka"))
    properties = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    # then
    assert properties["listeners"] == ("PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093")
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert properties["log.dirs"] == str(tmp_path / "kafka")
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["transaction.state.log.min.isr"] == "1"
    assert properties["share.coordinator.state.topic.replication.factor"] == "1"
    assert properties["group.initial.rebalance.delay.ms"] == "0"


def test_a_kafka_cluster_id_looks_like_kafkas_own() -> None:
    # when
    cluster_id = dev_kafka.new_cluster_id()
    # then 16 bytes in unpadded base64url
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)


def test_cassandra_yaml_carries_the_ports_and_directories(tmp_path: Path) -> None:
    # given
    dev = DevSettings(cql_port=19042, cassandra_storage_port=17000)
    # when
    config = yaml.safe_load(
        dev_cassandra.render_yaml(
            dev_cassandra.cassandra_config(dev_cassandra.single_node(dev), tmp_path)
        )
    )
    # then
    assert config["native_transport_port"] == 19042
    assert config["storage_port"] == 17000
    assert config["seed_provider"][0]["parameters"][0]["seeds"] == "127.0.0.1:17000"
    assert config["data_file_directories"] == [str(tmp_path / "data")]
    assert config["commitlog_directory"] == str(tmp_path / "commitlog")
    assert config["listen_address"] == config["rpc_address"] == "127.0.0.1"


def test_cassandra_command_has_java17_options_jamm_agent_and_fast_start(tmp_path: Path) -> None:
    # given a jar dir holding the jamm agent
    (tmp_path / "jars").mkdir()
    (tmp_path / "jars" / "jamm-0.4.0.jar").touch()
    dev = DevSettings(cassandra_jmx_port=17199, cassandra_heap="512m")
    # when
    command = dev_cassandra.server_command(
        dev.java,
        dev_cassandra.single_node(dev),
        tmp_path / "jars",
        tmp_path / "conf",
        tmp_path / "data",
        tmp_path / "logs",
    )
    # then
    assert f"-javaagent:{tmp_path / 'jars' / 'jamm-0.4.0.jar'}" in command
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in command
    assert f"-Dcassandra.config={(tmp_path / 'conf' / 'cassandra.yaml').as_uri()}" in command
    assert "-Dcassandra.jmx.local.port=17199" in command
    assert "-Dcassandra.skip_wait_for_gossip_to_settle=0" in command
    assert "-Xmx512m" in command
    assert command[-1] == dev_cassandra.MAIN_CLASS


def test_status_without_pid_files_reports_both_servers_stopped(tmp_path: Path) -> None:
    # when
    found = devservers.status(DevSettings(home=tmp_path))
    # then
    assert [(server.name, server.state, server.pid) for server in found] == [
        ("cassandra", "stopped", None),
        ("kafka", "stopped", None),
    ]


def test_a_pid_file_naming_someone_elses_process_is_ignored_and_removed(tmp_path: Path) -> None:
    # given a pid file whose pid (this test process) is not a Kafka of this home
    dev = DevSettings(home=tmp_path)
    DevPaths.of(dev).create()
    pid_file = DevPaths.of(dev).pid("kafka")
    pid_file.write_text(f"{os.getpid()}\n")
    # when
    states = {server.name: server.state for server in devservers.status(dev)}
    devservers.down(dev, echo=lambda _: None)
    # then it was never treated as ours (we are still alive) and the stale file is gone
    assert states["kafka"] == "stopped"
    assert not pid_file.exists()


def test_jars_resolve_once_and_again_only_when_the_pom_changes(tmp_path: Path) -> None:
    # given
    dev = _settings(tmp_path / "home")
    paths = DevPaths.of(dev)
    paths.create()
    # when resolving twice, then with a marker of another pom
    resolve_jars("kafka", dev, paths, echo=lambda _: None)
    resolve_jars("kafka", dev, paths, echo=lambda _: None)
    (paths.jars("kafka") / ".resolved").write_text("kafka some-older-pom\n")
    (paths.jars("kafka") / "left-over-1.0.jar").touch()
    resolve_jars("kafka", dev, paths, echo=lambda _: None)
    # then Maven ran twice and the jars of the old pom are gone
    assert (tmp_path / "maven-calls").read_text().count("call") == 2
    assert not (paths.jars("kafka") / "left-over-1.0.jar").exists()


def test_a_server_that_dies_at_start_reports_its_log_tail(tmp_path: Path) -> None:
    # given a "java" whose server prints 40 lines and exits
    java = _fake_java('for i in $(seq 1 40); do echo "boot line $i"; done; exit 3')
    dev = _settings(tmp_path / "home", java=_executable(tmp_path / "fake-java", java))
    messages: list[str] = []
    # when
    with pytest.raises(DevServerError) as raised:
        devservers.up(dev, echo=messages.append)
    # then the error says who died and shows the last 30 lines of its log, no more
    text = str(raised.value)
    assert "exited during start-up" in text
    assert "boot line 40" in text and "boot line 11" in text and "boot line 10\n" not in text
    assert all(not dev_process.is_alive(pid) for pid in _started_pids(messages))


def test_a_server_that_never_answers_times_out_and_everything_started_is_stopped(
    tmp_path: Path,
) -> None:
    # given a "java" whose server runs but never opens its port, and a 1 s start timeout
    java = _fake_java('echo "still booting"; exec sleep 60')
    dev = _settings(
        tmp_path / "home",
        java=_executable(tmp_path / "fake-java", java),
        start_timeout_seconds=1.0,
        stop_timeout_seconds=5.0,
    )
    messages: list[str] = []
    # when
    with pytest.raises(DevServerError) as raised:
        devservers.up(dev, echo=messages.append)
    # then the timeout is explained and both started processes are gone with their pid files
    assert "did not answer" in str(raised.value)
    assert "PULSE_DEV__START_TIMEOUT_SECONDS" in str(raised.value)
    assert "still booting" in str(raised.value)
    pids = _started_pids(messages)
    assert len(pids) == 2
    assert all(not dev_process.is_alive(pid) for pid in pids)
    assert list(DevPaths.of(dev).run.glob("*.pid")) == []


def test_cli_up_on_a_taken_port_exits_1_with_a_clear_message(
    tmp_path: Path, listening_port: int
) -> None:
    # given
    kafka, controller, storage, jmx = _free_ports(4)
    env = {
        "PULSE_DEV__HOME": str(tmp_path),
        "PULSE_DEV__KAFKA_PORT": str(kafka),
        "PULSE_DEV__KAFKA_CONTROLLER_PORT": str(controller),
        "PULSE_DEV__CQL_PORT": str(listening_port),
        "PULSE_DEV__CASSANDRA_STORAGE_PORT": str(storage),
        "PULSE_DEV__CASSANDRA_JMX_PORT": str(jmx),
    }
    # when
    result = CliRunner().invoke(dev_app, ["up"], env=env)
    # then
    assert result.exit_code == 1
    assert "PULSE_DEV__CQL_PORT" in result.output
    assert "Traceback" not in result.output


def test_cli_status_lists_both_servers(tmp_path: Path) -> None:
    # when
    result = CliRunner().invoke(dev_app, ["status"], env={"PULSE_DEV__HOME": str(tmp_path)})
    # then
    assert result.exit_code == 0
    assert re.search(r"^cassandra\s+stopped", result.output, re.MULTILINE)
    assert re.search(r"^kafka\s+stopped", result.output, re.MULTILINE)


def test_cluster_ids_never_start_with_a_dash() -> None:
    # given: a dash first makes the storage tool read the id as an option (seen in a CI run)
    # when
    ids = [dev_kafka.new_cluster_id() for _ in range(5000)]
    # then: about 78 of 5,000 random ids would start with "-"
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 for i in ids)
