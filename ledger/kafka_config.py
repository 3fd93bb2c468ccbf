"""Where the pulse log lives on Kafka and how every client reaches the brokers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KafkaConfig:
    """The topics and how to reach the brokers (built by pulse/settings.py).

    `client` holds further librdkafka properties every client gets, e.g. security.protocol and
    the SASL or TLS ones; secrets arrive here in plain text and must never be logged.
    """

    bootstrap_servers: str
    topic: str = "resource-consumption"
    dlq_topic: str = "resource-consumption.dlq"
    client: Mapping[str, str] = field(default_factory=dict)
    # Consumer group membership (see ledger.kafka_membership and docs/operations.md).
    static_membership: bool = True
    instance_id: str | None = None
    group_protocol: str = "classic"
    session_timeout_ms: int | None = 10000


def base_config(settings: KafkaConfig) -> dict[str, Any]:
    return {"bootstrap.servers": settings.bootstrap_servers, **settings.client}
