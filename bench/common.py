"""Shared benchmark plumbing: servers, fresh topics/keyspaces, role processes, RSS, percentiles."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devtools import servers as devservers
from devtools.config import DevSettings
from pulse.settings import (
    AuthSettings,
    Backend,
    CqlSettings,
    IngestSettings,
    KafkaSettings,
    Settings,
    as_env,
)

PULSE_CLI = str(Path(sys.executable).parent / "pulse")


@dataclass(frozen=True)
class Servers:
    kafka: str
    cql_host: str
    cql_port: int


def servers() -> Servers:
    """PULSE_TEST_KAFKA_BOOTSTRAP / PULSE_TEST_CQL when set, else `pulse dev up` (reused)."""
    kafka, cql = os.environ.get("PULSE_TEST_KAFKA_BOOTSTRAP"), os.environ.get("PULSE_TEST_CQL")
    if kafka and cql:
        host, _, port = cql.rpartition(":")
        return Servers(kafka, host, int(port))
    ends = devservers.up(DevSettings())
    return Servers(ends.kafka_bootstrap, ends.cql_host, ends.cql_port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_settings(srv: Servers, partitions: int = 6, keyspace: str = "pulse_bench") -> Settings:
    """Settings with a new topic pair and groups, migrated (topics + CQL tables)."""
    from pulse.migrate import run_migrations

    name = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        backend=Backend.SERVERS,
        kafka=KafkaSettings(
            bootstrap_servers=srv.kafka,
            topic=name,
            dlq_topic=f"{name}.dlq",
            partitions=partitions,
            writer_group=f"{name}-writer",
            projector_group=f"{name}-projector",
        ),
        cql=CqlSettings(contact_points=srv.cql_host, port=srv.cql_port, keyspace=keyspace),
        ingest=IngestSettings(address=f"127.0.0.1:{free_port()}"),
        auth=AuthSettings(mode="off"),  # benchmarks measure the pipeline, not key checks
    )
    for _line in run_migrations(settings):
        pass
    return settings


def env_of(settings: Settings) -> dict[str, str]:
    return {**os.environ, **as_env(settings)}


def start_role(settings: Settings, role: str, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [PULSE_CLI, "serve", role], env=env_of(settings), stdout=log, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serving(target: str) -> bool:
    """True when the ingestor at `target` answers its gRPC health check with SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def header(title: str) -> str:
    return (
        f"# {title}\n# {datetime.now(UTC).isoformat(timespec='seconds')} on {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()})"
    )
