"""The gRPC ingestor: a thin asyncio servicer over ingestor.core, with health and reflection.

One event loop serves every call: a call awaits the delivery of its own records while the
producer batches the records of all calls in flight, so thousands of single-pulse calls can
wait at once without a thread each (ingestor.hosting runs the loop for threaded callers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from access.keys import Principal, Role
from access.verifier import KeyVerifier
from ingestor.core import Checked, check_batch
from ingestor.wire import layout
from kernel.errors import (
    Conflict,
    Forbidden,
    Invalid,
    LedgerError,
    NotFound,
    Revoked,
    Unauthenticated,
    Unavailable,
)
from ledger.ports import PulseLog
from ledger.validation import BillingUnitOf
from proto.pulse.v1 import pulse_pb2

log = logging.getLogger(__name__)

SERVICE = "pulse.v1.IngestService"
_METHOD = "Ingest"
# Threads for the synchronous health servicer (its Check and Watch): health is answered
# beside the event loop, never queued behind Ingest calls.
HEALTH_THREADS = 4


class _Undecodable:
    """Stands for a request whose bytes are not an IngestRequest."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Request:
    """A parsed request, and each pulse's encoding as received when it is known to parse
    to exactly that pulse (ingestor.wire); None: the pulses are encoded again."""

    message: pulse_pb2.IngestRequest
    encoded: list[bytes] | None


def _parse(data: bytes, max_batch: int) -> _Request | _Undecodable:
    """The request, or why it cannot be one; Invalid when it holds more than `max_batch`."""
    walked = layout(data, max_batch)
    if walked.fields > max_batch:
        raise Invalid(
            f"pulses: the batch has at least {walked.fields}; at most {max_batch} per request"
        )
    request = pulse_pb2.IngestRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        return _Undecodable(str(exc))
    encoded = walked.pulses
    if encoded is not None and len(encoded) != len(request.pulses):
        encoded = None  # the walk and the parser disagree: trust only the parser
    return _Request(request, encoded)


class IngestObserver(Protocol):
    """What the servicer reports (pulse.metrics implements it); called on the event loop, so
    it must not block."""

    def answered(self, results: Sequence[pulse_pb2.PulseResult], publish_seconds: float) -> None:
        """A batch was answered; `publish_seconds` is how long the log took to acknowledge it."""

    def refused_call(self, code: str) -> None:
        """A call was refused whole with this gRPC status name; nothing of it was stored."""


class IngestServicer:
    def __init__(
        self,
        pulse_log: PulseLog,
        billing_unit_of: BillingUnitOf,
        *,
        max_batch: int,
        future_skew: timedelta,
        auth: KeyVerifier | None,
        observer: IngestObserver | None = None,
    ) -> None:
        """`auth` None is development mode: no key is asked for (the caller says so loudly)."""
        self._observer = observer
        self._log = pulse_log
        self._auth = auth
        self._billing_unit_of = billing_unit_of
        self._max_batch = max_batch
        self._future_skew = future_skew

    @property
    def observer(self) -> IngestObserver | None:
        return self._observer

    async def ingest(
        self, data: bytes, context: grpc.aio.ServicerContext[bytes, pulse_pb2.IngestResponse]
    ) -> pulse_pb2.IngestResponse:
        """Ingest of one serialized IngestRequest (bounded by count before it is parsed)."""
        try:
            caller = await self._caller(context)
            checked = self._check(_parse(data, self._max_batch), caller)
            return await self._publish(*checked)
        except LedgerError as error:
            code = status_of(error).name
            log.info("ingest call refused: %s", error, extra={"role": "ingestor", "code": code})
            if self._observer is not None:
                self._observer.refused_call(code)
            await context.abort(status_of(error), str(error))
            raise  # abort raises; this line only tells the type checker

    async def _caller(
        self, context: grpc.aio.ServicerContext[bytes, pulse_pb2.IngestResponse]
    ) -> Principal | None:
        """The producer key of the call (metadata `authorization: Bearer <key>`)."""
        if self._auth is None:
            return None
        values = [v for k, v in context.invocation_metadata() or () if k == "authorization"]
        presented = values[0] if values and isinstance(values[0], str) else None
        caller = self._auth.cached(presented)
        if caller is None:
            # A key not seen within the TTL costs a store read and a scrypt: off the loop.
            caller = await asyncio.to_thread(self._auth.verify, presented)
        if caller.role is not Role.PRODUCER:
            raise Forbidden(f"a {caller.role} key may not ingest; use a producer key")
        return caller

    def _check(
        self, request: _Request | _Undecodable, caller: Principal | None
    ) -> tuple[Checked, datetime, int]:
        if isinstance(request, _Undecodable):
            raise Invalid(
                f"pulses: {request.reason}"
                if "pulses" in request.reason
                else (f"request: not an IngestRequest ({request.reason})")
            )
        pulses = request.message.pulses
        count = len(pulses)
        if count == 0:
            raise Invalid("pulses: the batch is empty")
        if count > self._max_batch:
            raise Invalid(
                f"pulses: the batch has {count} pulses; at most {self._max_batch} per request"
            )
        now = datetime.now(UTC)
        # Kafka timestamps are milliseconds: stamp arrival at that precision everywhere so
        # the embedded and the Kafka backends store the same arrival time.
        arrival = now.replace(microsecond=now.microsecond // 1000 * 1000)
        checked = check_batch(
            pulses,
            arrival,
            self._future_skew,
            self._billing_unit_of,
            may_send=None if caller is None else caller.may_send_for,
            encoded=request.encoded,
        )
        if checked.rejected and log.isEnabledFor(logging.DEBUG):
            for message, result in zip(pulses, checked.response.results, strict=True):
                if result.status == pulse_pb2.PulseResult.REJECTED:
                    # One line per rejected pulse: DEBUG, since a bad sender can make many.
                    log.debug(
                        "pulse %r rejected: %s",
                        result.pulse_id,
                        result.reason,
                        extra={
                            "role": "ingestor",
                            "tenant": message.tenant_id,
                            "field": result.field,
                        },
                    )
        return checked, arrival, count

    async def _publish(
        self, checked: Checked, arrival: datetime, count: int
    ) -> pulse_pb2.IngestResponse:
        published = time.perf_counter()
        if checked.records:
            try:
                # Answer only after the log confirmed every record (acks=all).
                await self._log.publish_async(checked.records, arrival)
            except Unavailable as exc:
                log.warning(
                    "ingest batch of %d not stored: %s", count, exc, extra={"role": "ingestor"}
                )
                raise Unavailable(
                    f"pulse log unavailable, nothing of this batch was accepted; retry: {exc}"
                ) from exc
        if self._observer is not None:
            self._observer.answered(checked.response.results, time.perf_counter() - published)
        return checked.response


# The gRPC edge's one error map (kernel category -> status code).
# Order matters: subclasses first (a revoked key is denied, not merely unauthenticated).
STATUS: dict[type[LedgerError], grpc.StatusCode] = {
    Revoked: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    Invalid: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Conflict: grpc.StatusCode.ALREADY_EXISTS,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_of(error: LedgerError) -> grpc.StatusCode:
    for kind, code in STATUS.items():
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def server_credentials(
    certificate_chain: bytes, private_key: bytes, client_ca: bytes | None = None
) -> grpc.ServerCredentials:
    """TLS with this certificate; with `client_ca`, clients must show a certificate it
    signed (mutual TLS)."""
    return grpc.ssl_server_credentials(
        [(private_key, certificate_chain)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _capped(
    servicer: IngestServicer,
    max_calls: int,
    max_bytes: int,
    observer: IngestObserver | None = None,
) -> Any:  # grpc's handler signature is untyped
    """Ingest behind two caps: beyond `max_calls` calls or `max_bytes` of requests in flight
    the call is refused at once with RESOURCE_EXHAUSTED (retryable: nothing of it was stored),
    before it is parsed. Thousands of single pulses may wait for Kafka together, while large
    batches, which parse into ~10x their size, are held to a bounded amount of memory. A call
    alone is always admitted, whatever its size (max_message_bytes bounds it)."""
    in_flight = 0  # only the event loop's thread touches these two
    in_flight_bytes = 0

    async def ingest(
        data: bytes, context: grpc.aio.ServicerContext[bytes, pulse_pb2.IngestResponse]
    ) -> pulse_pb2.IngestResponse:
        nonlocal in_flight, in_flight_bytes
        size = len(data)
        if in_flight >= max_calls or (in_flight and in_flight_bytes + size > max_bytes):
            if observer is not None:
                observer.refused_call(grpc.StatusCode.RESOURCE_EXHAUSTED.name)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the ingestor is at its {max_calls} concurrent calls or {max_bytes} bytes of "
                "requests in flight; nothing of this batch was stored, retry with back-off",
            )
        in_flight += 1
        in_flight_bytes += size
        try:
            return await servicer.ingest(data, context)
        finally:
            in_flight -= 1
            in_flight_bytes -= size

    return ingest


async def build_server(
    servicer: IngestServicer,
    address: str,
    *,
    max_message_bytes: int,
    max_concurrent_calls: int,
    max_in_flight_bytes: int,
    credentials: grpc.ServerCredentials | None,
    health_servicer: health.HealthServicer | None,
    reuse_port: bool,
) -> tuple[grpc.aio.Server, int]:
    """A bound, not yet started asyncio server (on the running loop); port 0 picks a free one.

    `health_servicer` is the synchronous one: its status is set from other threads (the
    process's readiness), and its calls run in a small pool of their own."""
    server = grpc.aio.server(
        migration_thread_pool=futures.ThreadPoolExecutor(
            max_workers=HEALTH_THREADS, thread_name_prefix="ingest-health"
        ),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # Several ingestor processes may share one port (the kernel spreads connections).
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
    )
    handler: Any = grpc.unary_unary_rpc_method_handler(
        _capped(servicer, max_concurrent_calls, max_in_flight_bytes, servicer.observer),
        request_deserializer=None,  # bytes: counted before parsing (_parse)
        response_serializer=pulse_pb2.IngestResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {_METHOD: handler}),)
    )
    if health_servicer is None:
        health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (
            pulse_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot bind the ingestor to {address}")
    return server, port
