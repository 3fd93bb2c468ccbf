"""Prometheus metrics of one process: the instruments, the hooks the roles call, the exposition.

The roles (ingestor, writer, projector, API) know nothing of Prometheus: they take small
callbacks (`IngestObserver`, `on_batch`, `on_projected`) that `pulse.runtime` wires to a
`Metrics`. Each process has its own registry, so tests can run several in one interpreter.
Labels are bounded (a field name, a route template, a partition): no tenant id, pulse id or
key ever becomes a label, which is what lets /metrics be read by an operator's scraper without
exposing any tenant's data. docs/operations.md lists every metric and the alerts to set.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from access.keys import Role
from access.verifier import KeyVerifier
from kernel.errors import Forbidden
from ledger.model import LogRecord
from ledger.ports import PulseLog
from ledger.writer import BatchReport
from proto.pulse.v1 import pulse_pb2

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_FRESHNESS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
_BATCH = (1, 10, 50, 100, 500, 1000, 2000, 5000)


class Metrics:
    """The instruments of one process and the hooks that feed them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pulses = Counter(
            "pulse_ingest_pulses", "Pulses answered by the ingestor", ["outcome"], registry=r
        )
        # Bound once: a single-pulse call should not pay a label look-up (the ingestor's loop
        # answers thousands of them a second).
        self._accepted = self.pulses.labels("accepted")
        self._rejected = self.pulses.labels("rejected")
        self.rejections = Counter(
            "pulse_ingest_rejections",
            "Pulses rejected by the ingestor, by the field the rejection names",
            ["field"],
            registry=r,
        )
        self.refused = Counter(
            "pulse_ingest_refused_requests",
            "Ingest calls refused whole (nothing stored), by gRPC status",
            ["code"],
            registry=r,
        )
        self.publish = Histogram(
            "pulse_ingest_publish_seconds",
            "Delivery latency: publish of a batch until the log acknowledged every record",
            buckets=_LATENCY,
            registry=r,
        )
        self.batch = Histogram(
            "pulse_writer_batch_records", "Records per writer batch", buckets=_BATCH, registry=r
        )
        self.records = Counter(
            "pulse_writer_records",
            "Records the writer handled, by result (written, duplicate, conflict, dead_letter)",
            ["result"],
            registry=r,
        )
        self.dead_letters = Counter(
            "pulse_writer_dead_letters",
            "Records the writer sent to the dead-letter log, by reason",
            ["reason"],
            registry=r,
        )
        self.freshness = Histogram(
            "pulse_projector_freshness_seconds",
            "Arrival of a pulse at the ingestor until its hour is visible in the projection",
            buckets=_FRESHNESS,
            registry=r,
        )
        self.hours = Counter(
            "pulse_projector_hours", "Tenant-hours re-derived by the projector", registry=r
        )
        self.corrections = Counter(
            "pulse_invoice_corrections",
            "Correction notes issued for finalized invoices, by kind",
            ["kind"],
            registry=r,
        )
        self.http = Histogram(
            "pulse_http_request_seconds",
            "HTTP API latency by method, route template and status",
            ["method", "route", "status"],
            buckets=_LATENCY,
            registry=r,
        )

    # --- the ingestor (ingestor.server.IngestObserver) ---

    def answered(self, results: Sequence[pulse_pb2.PulseResult], publish_seconds: float) -> None:
        accepted_status = pulse_pb2.PulseResult.ACCEPTED
        accepted = 0
        for result in results:
            if result.status == accepted_status:
                accepted += 1
            else:
                self._rejected.inc()
                self.rejections.labels(result.field or "unknown").inc()
        if accepted:
            self._accepted.inc(accepted)
            self.publish.observe(publish_seconds)

    def refused_call(self, code: str) -> None:
        self.refused.labels(code).inc()

    # --- the writer (LedgerWriter on_batch) ---

    def writer_batch(self, report: BatchReport) -> None:
        if not report.records:
            return
        self.batch.observe(report.records)
        for result, count in (
            ("written", report.written),
            ("duplicate", report.duplicates),
            ("conflict", report.conflicts),
            ("dead_letter", report.conflicts + report.undecodable),
        ):
            if count:
                self.records.labels(result).inc(count)
        if report.conflicts:
            self.dead_letters.labels("conflict").inc(report.conflicts)
        if report.undecodable:
            self.dead_letters.labels("undecodable").inc(report.undecodable)

    # --- the projector (HourlyProjector on_projected) ---

    def projected(self, records: Sequence[LogRecord], hours: int) -> None:
        """Called once the hours of `records` are written: each record is visible now."""
        now = datetime.now(UTC)
        self.hours.inc(hours)
        for record in records:
            self.freshness.observe(max(0.0, (now - record.arrival).total_seconds()))

    def corrected(self, kinds: Iterable[str]) -> None:
        for kind in kinds:
            self.corrections.labels(kind).inc()

    # --- consumer lag, read at scrape time ---

    def watch_lag(self, log: PulseLog, groups: Iterable[str]) -> None:
        """Adds `pulse_consumer_lag{group,partition}`: log end offset - committed offset."""
        self.registry.register(_LagCollector(log, tuple(groups)))

    def watch_health(self, report: Callable[[], dict[str, Any]]) -> None:
        """Adds `pulse_role_ready{role}` (1/0) and `pulse_role_restarts{role}` from the
        process's health report (pulse.supervision), read at scrape time."""
        self.registry.register(_HealthCollector(report))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LagCollector:
    def __init__(self, log: PulseLog, groups: tuple[str, ...]) -> None:
        self._log = log
        self._groups = groups

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "pulse_consumer_lag",
            "Records in the log not yet committed by the group (end offset - committed)",
            labels=["group", "partition"],
        )

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        try:
            ends = self._log.end_offsets()
            committed = {group: self._log.committed(group) for group in self._groups}
        except Exception:  # the log is unreachable: no sample rather than a failed scrape
            yield family
            return
        for group, offsets in committed.items():
            for partition, end in sorted(ends.items()):
                lag = max(0, end - offsets.get(partition, 0))
                family.add_metric([group, str(partition)], lag)
        yield family


class _HealthCollector:
    def __init__(self, report: Callable[[], dict[str, Any]]) -> None:
        self._report = report

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("pulse_role_ready", "1 when the role is ready", labels=["role"]),
            GaugeMetricFamily(
                "pulse_role_restarts", "Restarts of the role since start", labels=["role"]
            ),
        )

    def collect(self) -> Iterator[Metric]:
        ready, restarts = self._families()
        for role, state in sorted(self._report()["roles"].items()):
            ready.add_metric([role], 1.0 if state["ready"] else 0.0)
            restarts.add_metric([role], float(state["restarts"]))
        yield ready
        yield restarts


# --- the HTTP API: a route for /metrics and a latency middleware (pure ASGI) ---

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class LatencyMiddleware:
    """Observes every HTTP request under its route template (`/v1/tenants/{tenant_id}/usage`,
    never the concrete path, so tenant ids stay out of labels); unmatched paths count as
    "unmatched"."""

    def __init__(self, app: App, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http.labels(
                scope.get("method", ""), template, str(status["code"])
            ).observe(time.perf_counter() - started)


def serve_on(app: FastAPI, metrics: Metrics) -> None:
    """Adds `GET /metrics` and the latency middleware to the read API (before it serves).

    /metrics needs an operator key when auth is on (open in development mode): the metrics
    hold no tenant data, but traffic volumes, error rates and route latencies of every tenant
    together are an operator's view, and Prometheus sends a bearer key with
    `authorization: {credentials_file: ...}`.
    """
    app.add_middleware(LatencyMiddleware, metrics=metrics)

    def scrape(request: Request) -> Response:
        verifier: KeyVerifier | None = request.app.state.auth
        if verifier is not None:
            caller = verifier.verify(request.headers.get("authorization"))
            if caller.role is not Role.OPERATOR:
                raise Forbidden("/metrics needs an operator key")
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)
