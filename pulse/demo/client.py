"""A small gRPC client of the ingestor, used by `pulse send`, the demo, tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import grpc

from ledger.model import to_micros
from proto.pulse.v1 import pulse_pb2

_METHOD = "/pulse.v1.IngestService/Ingest"


def make_pulse(
    pulse_id: str,
    tenant_id: str,
    sku: str,
    amount: Decimal | str,
    unit: str,
    occurred_at: datetime,
    *,
    resource_id: str = "",
    region: str = "",
    source: str = "",
    attributes: Mapping[str, str] | None = None,
) -> pulse_pb2.Pulse:
    message = pulse_pb2.Pulse(
        pulse_id=pulse_id,
        tenant_id=tenant_id,
        product_sku=sku,
        used_amount=str(amount),
        use_unit=unit,
        resource_id=resource_id,
        region=region,
        source=source,
        attributes=dict(attributes or {}),
    )
    micros = to_micros(occurred_at)
    message.occurred_at.seconds = micros // 1_000_000
    message.occurred_at.nanos = (micros % 1_000_000) * 1000
    return message


class IngestClient:
    """`key`: a producer API key, sent as gRPC metadata `authorization: Bearer <key>`.
    Plaintext, or TLS when `ca_file` is given (plus a client certificate for mutual TLS)."""

    def __init__(
        self,
        target: str,
        *,
        max_message_bytes: int = 64 * 1024 * 1024,
        key: str | None = None,
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ) -> None:
        self._metadata = (("authorization", f"Bearer {key}"),) if key else None
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            # A connection of its own per client: grpc shares one among channels to the same
            # target, which would keep every client of a process on one ingestor process
            # behind a shared port (SO_REUSEPORT spreads connections, not calls).
            ("grpc.use_local_subchannel_pool", 1),
        ]
        if ca_file is None:
            self.channel = grpc.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=ca_file.read_bytes(),
                private_key=key_file.read_bytes() if key_file else None,
                certificate_chain=cert_file.read_bytes() if cert_file else None,
            )
            self.channel = grpc.secure_channel(target, credentials, options=options)
        self._ingest = self.channel.unary_unary(
            _METHOD,
            request_serializer=pulse_pb2.IngestRequest.SerializeToString,
            response_deserializer=pulse_pb2.IngestResponse.FromString,
        )
        self._raw = self.channel.unary_unary(
            _METHOD,
            request_serializer=None,
            response_deserializer=pulse_pb2.IngestResponse.FromString,
        )

    def ingest(
        self, pulses: Sequence[pulse_pb2.Pulse], timeout: float = 30.0
    ) -> list[pulse_pb2.PulseResult]:
        response: pulse_pb2.IngestResponse = self._ingest(
            pulse_pb2.IngestRequest(pulses=pulses), timeout=timeout, metadata=self._metadata
        )
        return list(response.results)

    def ingest_bytes(self, payload: bytes, timeout: float = 30.0) -> pulse_pb2.IngestResponse:
        """Sends raw bytes as the request (for hostile-input tests)."""
        response: pulse_pb2.IngestResponse = self._raw(
            payload, timeout=timeout, metadata=self._metadata
        )
        return response

    def close(self) -> None:
        self.channel.close()
