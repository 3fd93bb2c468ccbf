"""Pulses through gRPC -> finalized invoices whose totals match an independent computation;
verify passes; a late pulse after finalization yields the expected correction document."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from catalog.files import read_catalog, read_contracts
from projections.invoices import Invoicing, writer_commits
from proto.pulse.v1 import pulse_pb2
from pulse.bootstrap import SAMPLE_CATALOG, billing_app
from pulse.demo.client import IngestClient, make_pulse
from pulse.settings import Backend, EmbeddedSettings, IngestSettings, Settings
from tests.e2e.pipeline import Pipeline, running_pipeline, server_settings

PERIOD = "2026-10"  # wholly in the past: the ingestor accepts it, nothing else changes it
START = datetime(2026, 10, 1, tzinfo=UTC)
ACCEPTED = pulse_pb2.PulseResult.ACCEPTED
ROLES = {"ingestor", "writer", "projector"}

# The test's own reading of pulse/sample/catalog.yaml for October 2026 (written out by hand):
VCPU_PRICE = Decimal("0.0450")  # compute.vcpu, per unit, vCPU-hour
EGRESS_TIERS = [(Decimal(10), Decimal(0)), (Decimal(1000), Decimal("0.45"))]  # GB, graduated
# ... and of the contract written below: 10% off everything, 50 GB of egress free a month.
DISCOUNT = Decimal("0.10")
FREE_EGRESS_GB = Decimal(50)


def contracts_file(tenant: str) -> str:
    return f"""contracts:
  - tenant_id: {tenant}
    amendments:
      - effective_from: "2026-01-01"
        discounts: [{{percent: "10"}}]
        allowances: {{network.egress: "50"}}
"""


def expected_total(vcpu_hours: Decimal, egress_gb: Decimal) -> Decimal:
    cent = Decimal("0.01")
    vcpu = (vcpu_hours * VCPU_PRICE * (1 - DISCOUNT)).quantize(cent, ROUND_HALF_EVEN)
    billable = max(Decimal(0), egress_gb - FREE_EGRESS_GB)
    egress = Decimal(0)
    lower = Decimal(0)
    for upper, price in EGRESS_TIERS:
        egress += max(Decimal(0), min(billable, upper) - lower) * price
        lower = upper
    egress = (egress * (1 - DISCOUNT)).quantize(cent, ROUND_HALF_EVEN)
    return vcpu + egress


@contextmanager
def pipeline_for(backend: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[Pipeline]:
    if backend == "embedded":
        settings = Settings(
            backend=Backend.EMBEDDED,
            embedded=EmbeddedSettings(path=tmp / "embedded"),
            ingest=IngestSettings(address="127.0.0.1:0"),
        )
    else:
        settings = server_settings(
            request.getfixturevalue("kafka_bootstrap"),
            request.getfixturevalue("cql_endpoint"),
            request.getfixturevalue("migrated_keyspace"),
        )
    with running_pipeline(settings, ROLES) as pipeline:
        yield pipeline


@pytest.mark.parametrize(
    "backend", ["embedded", pytest.param("servers", marks=pytest.mark.servers)]
)
def test_finalized_invoice_matches_independent_total_verifies_and_is_corrected(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # given: a tenant with a contract, October usage of vCPU and egress (with a duplicate)
    tenant = f"inv-{uuid.uuid4().hex[:8]}"
    pulses = []
    for day in range(0, 31, 3):
        at = START + timedelta(days=day, hours=9)
        pulses.append(make_pulse(f"vm-{day}", tenant, "compute.vcpu", "24", "vCPU-hour", at))
        pulses.append(make_pulse(f"eg-{day}", tenant, "network.egress", "7300", "MB", at))
    vcpu_hours = Decimal(24) * 11
    egress_gb = Decimal("7.3") * 11
    with pipeline_for(backend, request, tmp_path) as pipeline:
        app = billing_app(pipeline.settings)
        app.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
        app.apply_contracts(read_contracts(contracts_file(tenant)))
        committed = writer_commits(pipeline.parts.log, pipeline.settings.kafka.writer_group)
        invoicing = Invoicing(app, pipeline.parts.ledger, pipeline.parts.usage, committed)
        client = IngestClient(pipeline.target, key=pipeline.key)
        assert {r.status for r in client.ingest(pulses + pulses[:4])} == {ACCEPTED}
        pipeline.wait_caught_up()

        # when: finalized, verified, then a late pulse arrives and a correction is issued
        draft, digest = invoicing.finalize(tenant, PERIOD)
        verified = invoicing.verify(tenant, PERIOD)
        late = make_pulse(
            "eg-late", tenant, "network.egress", "100", "GB", START + timedelta(days=20)
        )
        assert client.ingest([late])[0].status == ACCEPTED
        pipeline.wait_caught_up()  # the projector notes corrections before it commits
        invoice = app.invoice(tenant, PERIOD)
        assert invoice is not None
        notes = invoice.notes()
        again = invoicing.correct(tenant, PERIOD)
        verified_after = invoicing.verify(tenant, PERIOD)
        lineage = invoicing.explain(tenant, PERIOD, "network.egress")
        client.close()

    # then: the total is what the catalog and contract say for the unique pulses
    assert draft.total == expected_total(vcpu_hours, egress_gb)
    assert draft.unpriced == ()
    assert verified.ok and verified.recorded == digest
    # the finalized invoice did not change; the late 100 GB became one debit note, issued by
    # the projector as soon as it re-derived that hour (asking again finds nothing new)
    assert verified_after.ok and invoice.sha256 == digest
    [note] = notes
    assert again is None
    delta = expected_total(vcpu_hours, egress_gb + 100) - expected_total(vcpu_hours, egress_gb)
    assert note.total == delta > 0 and note.title == "debit note"
    assert note.sha256 != digest and note.references == digest
    [line] = note.lines
    assert (line.sku, line.quantity_delta) == ("network.egress", Decimal(100))
    # lineage: the egress line's pulses, each with its ledger (Kafka) position, once
    assert sorted(r.pulse_id for r in lineage) == sorted(
        [f"eg-{d}" for d in range(0, 31, 3)] + ["eg-late"]
    )
    assert len({r.position for r in lineage}) == len(lineage)
    assert all(r.hour.strftime("%Y-%m") == PERIOD for r in lineage)
