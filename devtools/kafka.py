"""What `pulse dev` runs as Apache Kafka: a single KRaft broker+controller on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from devtools.config import DevSettings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


def bootstrap(dev: DevSettings) -> str:
    return f"{HOST}:{dev.kafka_port}"


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's `Uuid` prints it: 16 random bytes, base64url, no padding.

    Like Kafka's own Uuid.randomUuid, never one starting with "-": the storage tool's
    argument parser would read it as an option (1 start in 64 failed that way).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def server_properties(dev: DevSettings, data_dir: Path) -> dict[str, str]:
    """One node that is both broker and controller, with a static quorum of itself."""
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        # A static voter set needs no `--standalone` when formatting, unlike
        # controller.quorum.bootstrap.servers.
        "controller.quorum.voters": f"1@{HOST}:{dev.kafka_controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{dev.kafka_port},CONTROLLER://{HOST}:{dev.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{dev.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        # Every internal topic must fit on one broker, or groups and transactions hang.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # Tests join fresh groups constantly; the 3 s default delay would slow each one.
        "group.initial.rebalance.delay.ms": "0",
        # Topics are created explicitly (with their partition count); a typo must fail.
        "auto.create.topics.enable": "false",
    }


def render_properties(properties: dict[str, str]) -> str:
    lines = ["# Written by `pulse dev up` on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


def is_formatted(data_dir: Path) -> bool:
    """StorageTool writes meta.properties; its presence means the log dir holds a cluster."""
    return (data_dir / "meta.properties").is_file()


def _jvm_options(dev: DevSettings) -> list[str]:
    return [
        f"-Xms{dev.kafka_heap}",
        f"-Xmx{dev.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
    ]


def format_command(dev: DevSettings, jar_dir: Path, config: Path, cluster_id: str) -> list[str]:
    """StorageTool calls System.exit, so it runs as its own short-lived JVM."""
    return [
        dev.java,
        "-cp",
        f"{jar_dir}/*",
        STORAGE_TOOL,
        "format",
        "-t",
        cluster_id,
        "-c",
        str(config),
        "--ignore-formatted",
    ]


def server_command(dev: DevSettings, jar_dir: Path, config: Path) -> list[str]:
    return [dev.java, *_jvm_options(dev), "-cp", f"{jar_dir}/*", MAIN_CLASS, str(config)]


def answers(dev: DevSettings, timeout: float) -> bool:
    """True when an AdminClient gets metadata listing at least one broker."""
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap(dev),
            # librdkafka would print connection-refused lines while the broker starts.
            "log_level": 0,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as error:
        log.debug("kafka at %s not answering yet: %s", bootstrap(dev), error)
        return False
    return len(metadata.brokers) > 0
