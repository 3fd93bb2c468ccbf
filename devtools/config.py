"""Settings of the local development servers (`pulse dev`), from PULSE_DEV__* variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DevSettings(BaseSettings):
    """Where `pulse dev` keeps jars, data and logs of the local Kafka and Cassandra.

    Read from PULSE_DEV__* variables (e.g. PULSE_DEV__CQL_PORT); not part of the product's
    settings, since dev tooling is not shipped in the wheel.
    """

    model_config = SettingsConfigDict(env_prefix="PULSE_DEV__", frozen=True, extra="forbid")

    home: Path = Path(".pulse-dev")
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    cql_port: int = Field(default=9042, ge=1, le=65535)
    cassandra_storage_port: int = Field(default=7000, ge=1, le=65535)
    cassandra_jmx_port: int = Field(default=7199, ge=1, le=65535)
    java: str = "java"
    kafka_heap: str = "768m"
    cassandra_heap: str = "1G"
    start_timeout_seconds: float = Field(default=180.0, gt=0)
    stop_timeout_seconds: float = Field(default=60.0, gt=0)  # SIGTERM grace before SIGKILL
    # `pulse dev ring`: a Cassandra ring beside the single node, one loopback address per node
    # (Linux routes all of 127.0.0.0/8 to lo), the same ports on each; JMX off.
    ring_hosts: str = Field(
        default="127.0.0.2,127.0.0.3,127.0.0.4",
        pattern=r"^127\.\d+\.\d+\.\d+(,127\.\d+\.\d+\.\d+)*$",
    )
    ring_cql_port: int = Field(default=9042, ge=1, le=65535)
    ring_storage_port: int = Field(default=7000, ge=1, le=65535)
    ring_heap: str = "448m"
    maven: str = "mvn"  # resolves the server jars from Maven Central on first `up`
