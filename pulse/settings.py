"""The one settings model of pulse-ledger, read once at the entry point (prefix PULSE_)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from kernel.errors import Invalid
from ledger.kafka import KafkaConfig
from storage.cql import CqlConfig, CqlTls


class Backend(StrEnum):
    """Which adapters the composition root wires."""

    EMBEDDED = "embedded"  # SQLite log + SQLite ledger, one process, no servers
    SERVERS = "servers"  # Apache Kafka + ScyllaDB/Cassandra


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "resource-consumption"
    dlq_topic: str = "resource-consumption.dlq"
    partitions: int = Field(default=6, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    writer_group: str = "pulse-ledger-writer"
    projector_group: str = "pulse-ledger-projector"
    # Group membership decides how fast a restarted writer/projector gets its partitions back
    # (docs/operations.md, "Recovery after a crash"). Static membership: each consumer joins
    # with group.instance.id = instance_id (default: the host name), plus ".N" for the N-th
    # member of the same group on the same host (claimed with a lock file, so two processes
    # never share an id by accident); a restart with the same id takes over at once.
    static_membership: bool = True
    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,200}$")
    group_protocol: str = Field(default="classic", pattern=r"^(classic|consumer)$")
    # Classic protocol only: how long a member that vanished without a goodbye (and whose id
    # nobody reuses) keeps its partitions. librdkafka's default is 45 s.
    session_timeout_ms: int | None = Field(default=10000, ge=1000)
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # TLS to the brokers: any of these turns it on (SSL, or SASL_SSL with a SASL user).
    ssl: bool = False
    ssl_ca_file: Path | None = None  # brokers' CA; the system's when unset
    ssl_cert_file: Path | None = None  # client certificate, when brokers require one
    ssl_key_file: Path | None = None
    ssl_key_password: SecretStr | None = None

    @model_validator(mode="after")
    def _cert_with_key(self) -> KafkaSettings:
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError("ssl_cert_file and ssl_key_file go together")
        return self

    def config(self) -> KafkaConfig:
        """What the Kafka adapter needs (ledger.kafka takes no settings of ours)."""
        client: dict[str, str] = {}
        sasl = bool(self.sasl_username and self.sasl_password)
        tls = self.ssl or any((self.ssl_ca_file, self.ssl_cert_file))
        if sasl and self.sasl_username and self.sasl_password:
            client |= {
                "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password.get_secret_value(),
            }
        elif tls:
            client["security.protocol"] = "SSL"
        if sasl or tls:
            # librdkafka checks the broker's host name against its certificate by default
            client["ssl.endpoint.identification.algorithm"] = "https"
        if self.ssl_ca_file:
            client["ssl.ca.location"] = str(self.ssl_ca_file)
        if self.ssl_cert_file and self.ssl_key_file:
            client["ssl.certificate.location"] = str(self.ssl_cert_file)
            client["ssl.key.location"] = str(self.ssl_key_file)
        if self.ssl_key_password:
            client["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return KafkaConfig(
            self.bootstrap_servers,
            self.topic,
            self.dlq_topic,
            client,
            static_membership=self.static_membership,
            instance_id=self.instance_id,
            group_protocol=self.group_protocol,
            session_timeout_ms=self.session_timeout_ms,
        )


class CqlSettings(_Section):
    contact_points: str = "127.0.0.1"
    port: int = Field(default=9042, ge=1, le=65535)
    keyspace: str = Field(default="pulse_ledger", pattern=r"^[a-z][a-z0-9_]{0,47}$")
    flavor: str = Field(default="cassandra", pattern=r"^(cassandra|scylla)$")
    replication_factor: int = Field(default=1, ge=1)
    username: str | None = None
    password: SecretStr | None = None
    # Ledger and projection reads and writes (DESIGN invariant 12); LWTs use serial_consistency.
    consistency: Literal["ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM", "EACH_QUORUM", "ALL"] = (
        "LOCAL_QUORUM"
    )
    serial_consistency: Literal["SERIAL", "LOCAL_SERIAL"] = "LOCAL_SERIAL"
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    local_dc: str | None = None
    # TLS to the nodes: on when ssl is true or a CA file is given; the host name is checked.
    ssl: bool = False
    ssl_ca_file: Path | None = None  # nodes' CA; the system's when unset
    ssl_cert_file: Path | None = None  # client certificate, when nodes require one
    ssl_key_file: Path | None = None

    @model_validator(mode="after")
    def _cert_with_key(self) -> CqlSettings:
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError("ssl_cert_file and ssl_key_file go together")
        return self

    def hosts(self) -> list[str]:
        return [h.strip() for h in self.contact_points.split(",") if h.strip()]

    def config(self) -> CqlConfig:
        """What storage.cql.connect needs."""
        return CqlConfig(
            contact_points=tuple(self.hosts()),
            port=self.port,
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            consistency=self.consistency,
            serial_consistency=self.serial_consistency,
            request_timeout=self.request_timeout_seconds,
            local_dc=self.local_dc,
            tls=CqlTls(
                str(self.ssl_ca_file) if self.ssl_ca_file else None,
                str(self.ssl_cert_file) if self.ssl_cert_file else None,
                str(self.ssl_key_file) if self.ssl_key_file else None,
            )
            if self.ssl or self.ssl_ca_file or self.ssl_cert_file
            else None,
        )


class EmbeddedSettings(_Section):
    path: Path = Path(".pulse-data/embedded")
    partitions: int = Field(default=4, ge=1, le=64)


class IngestSettings(_Section):
    address: str = "127.0.0.1:50051"
    max_batch: int = Field(default=2000, ge=1)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    future_skew_seconds: int = Field(default=300, ge=0)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    # Ingest calls in flight at once (each awaits its Kafka acknowledgement on one event
    # loop, no thread each); more are answered RESOURCE_EXHAUSTED (retry with back-off).
    max_concurrent_calls: int = Field(default=2000, ge=1, le=100_000)
    # ...and at most this many bytes of requests in flight (a parsed batch takes ~10x its
    # wire size): large batches are refused RESOURCE_EXHAUSTED beyond it, single pulses rarely.
    max_in_flight_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Let several ingestor processes listen on the same port (SO_REUSEPORT; Linux spreads
    # connections among them): how one host uses more than one core for ingest.
    reuse_port: bool = False


class TlsSettings(_Section):
    """TLS of the two listening edges, gRPC ingest and the HTTP API (PULSE_TLS__*).

    cert_file and key_file (PEM) turn TLS on; client_ca_file (PEM) also requires every client
    to present a certificate signed by it (mutual TLS). Plaintext when none is set.
    """

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("client_ca_file needs cert_file and key_file (TLS) as well")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class MetricsSettings(_Section):
    """Prometheus /metrics of roles without the HTTP API (`pulse serve writer`, ...).

    port 0 = off. A process that runs the API serves /metrics on the API's port instead.
    Loopback by default: this listener has no key check (docs/operations.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)


class AuthSettings(_Section):
    # "on": every gRPC Ingest and HTTP tenant route needs an API key (`pulse keys create`).
    # "off": development mode, nobody is checked; the servers say so loudly when they start.
    mode: Literal["on", "off"] = "on"
    # How long a running process trusts a verified key before reading it again: the upper
    # bound on how long a revoked key keeps working.
    cache_seconds: float = Field(default=5.0, gt=0, le=60)


class SupervisionSettings(_Section):
    """How a process treats a failing role (pulse.supervision) and reports health."""

    # More than `max_restarts` failures of one role within `window_seconds` end the process.
    max_restarts: int = Field(default=5, ge=0)
    window_seconds: float = Field(default=300.0, gt=0)
    backoff_seconds: float = Field(default=1.0, ge=0)  # doubles per failure, up to the max
    backoff_max_seconds: float = Field(default=30.0, ge=0)
    # A role with no finished loop iteration for this long is "stuck": not ready.
    stuck_seconds: float = Field(default=60.0, gt=0)
    # When set, the process rewrites its health report here every second (container checks
    # of roles without an HTTP port: `python -m pulse.healthcheck file PATH`).
    health_file: Path | None = None


class Settings(BaseSettings):
    """Effective configuration; nested fields use `__`, e.g. PULSE_KAFKA__BOOTSTRAP_SERVERS."""

    model_config = SettingsConfigDict(
        env_prefix="PULSE_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    backend: Backend = Backend.EMBEDDED
    # Product list used to convert usage to billing units; the packaged sample when unset.
    catalog_file: Path | None = None
    kafka: KafkaSettings = KafkaSettings()
    cql: CqlSettings = CqlSettings()
    embedded: EmbeddedSettings = EmbeddedSettings()
    ingest: IngestSettings = IngestSettings()
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    # The API key `pulse send` presents (PULSE_KEY); a client setting, unused by the servers.
    key: SecretStr | None = None
    supervision: SupervisionSettings = SupervisionSettings()
    tls: TlsSettings = TlsSettings()
    metrics: MetricsSettings = MetricsSettings()
    # Log lines of `pulse serve`: "json" is one JSON object per line (pulse.logs).
    log_format: Literal["text", "json"] = "text"


# Variables with the prefix that belong to others: devtools/config.py and the test fixtures.
_NOT_OURS = ("PULSE_DEV__", "PULSE_TEST_")


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """PULSE_* variables that set nothing (a typo such as PULSE_BAKEND would otherwise leave
    the default in force without a word)."""
    unknown = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith("PULSE_") or upper.startswith(_NOT_OURS):
            continue
        path = upper.removeprefix("PULSE_").lower().split("__")
        field = Settings.model_fields.get(path[0])
        section = field.annotation if field is not None else None
        known = field is not None and (
            len(path) == 1
            or (
                len(path) == 2
                and isinstance(section, type)
                and issubclass(section, BaseModel)
                and path[1] in section.model_fields
            )
        )
        if not known:
            unknown.append(upper)
    return sorted(unknown)


def _variable(location: tuple[int | str, ...]) -> str:
    return "PULSE_" + "__".join(str(part).upper() for part in location)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of the PULSE_* variables; Invalid naming each variable that is wrong."""
    unknown = unknown_variables(os.environ if environ is None else environ)
    if unknown:
        raise Invalid(f"unknown setting variable(s): {', '.join(unknown)}")
    try:
        return Settings()
    except SettingsError as exc:  # a nested section given as malformed JSON
        found = re.search(r'field "([a-z_]+)"', str(exc))
        variable = _variable((found.group(1),)) if found else "a PULSE_* variable"
        raise Invalid(f"{variable}: not a valid JSON object ({exc})") from None
    except ValidationError as exc:
        # The values are not echoed: a section's JSON may hold a password.
        problems = [f"{_variable(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise Invalid("; ".join(problems)) from None


def masked(settings: Settings) -> dict[str, object]:
    """Settings as plain data with every secret replaced by asterisks."""
    return settings.model_dump(mode="json")  # SecretStr dumps as '**********'


def as_env(settings: Settings) -> dict[str, str]:
    """The PULSE_* variables that make a child process (`pulse serve ROLE`) see the same
    backend, topics, groups, keyspace and ingest address as `settings`."""
    return {
        "PULSE_BACKEND": settings.backend.value,
        "PULSE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "PULSE_KAFKA__TOPIC": settings.kafka.topic,
        "PULSE_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
        "PULSE_KAFKA__WRITER_GROUP": settings.kafka.writer_group,
        "PULSE_KAFKA__PROJECTOR_GROUP": settings.kafka.projector_group,
        "PULSE_CQL__CONTACT_POINTS": settings.cql.contact_points,
        "PULSE_CQL__PORT": str(settings.cql.port),
        "PULSE_CQL__KEYSPACE": settings.cql.keyspace,
        "PULSE_EMBEDDED__PATH": str(settings.embedded.path),
        "PULSE_INGEST__ADDRESS": settings.ingest.address,
        "PULSE_AUTH__MODE": settings.auth.mode,
    }
