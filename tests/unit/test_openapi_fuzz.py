"""schemathesis against /openapi.json of the real app over the embedded backend: no 5xx, and
every response (errors included) matches the schema it documents."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from access.keys import Role, new_key
from access.verifier import KeyVerifier
from ledger.model import LedgerEvent, Position, Pulse
from ledger.ports import ConflictRecord
from projections.invoices import Invoicing, writer_commits
from projections.reconcile import Reconciliation
from pulse.bootstrap import Parts, build
from pulse.settings import Backend, EmbeddedSettings, Settings
from query.app import create_app
from query.operations import OperatorTools

TOKEN: list[str] = []


def _app_over_embedded_backend() -> tuple[FastAPI, Parts]:
    """The real app as `pulse serve api --embedded` builds it, with a pulse and a conflict."""
    chosen = Settings(
        backend=Backend.EMBEDDED,
        embedded=EmbeddedSettings(path=Path(tempfile.mkdtemp(prefix="pulse-fuzz-"))),
    )
    parts = build(chosen)
    at = datetime(2026, 11, 3, 10, 15, tzinfo=UTC)
    stored = Pulse("p/1", "acme", "network.egress", Decimal(1), "GB", at)
    kept = LedgerEvent.of(stored, Position(0, 1), at)
    parts.ledger.append([kept])
    reused = LedgerEvent.of(replace(stored, used_amount=Decimal(2)), Position(0, 2), at)
    parts.ledger.record_conflicts([ConflictRecord(reused, kept.payload_hash)])
    commits = writer_commits(parts.log, chosen.kafka.writer_group)
    invoicing = Invoicing(parts.billing, parts.ledger, parts.usage, commits)
    units = parts.catalog.billing_unit
    tools = OperatorTools(
        Reconciliation(parts.history, parts.log, parts.ledger, parts.usage, invoicing, units),
        parts.log,
    )
    # Auth on, as served: generated requests carry an operator key; schemathesis's own
    # "missing header" requests must then get 401.
    made = new_key(Role.OPERATOR, (), "fuzz", datetime.now(UTC), cost=2**10)
    parts.keys.add(made.record)
    TOKEN.append(made.token)
    app = create_app(
        parts.ledger,
        parts.usage,
        invoicing,
        auth=KeyVerifier(parts.keys, ttl=5.0),
        billing_unit_of=units,
        operator_tools=tools,
        health=lambda: {"live": True, "ready": True, "roles": {}},
    )
    return app, parts


# schemathesis reads the schema when the module is collected, so the app is built here.
_APP, _PARTS = _app_over_embedded_backend()
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@pytest.fixture(scope="module", autouse=True)
def _close_parts() -> Iterator[None]:
    yield
    _PARTS.close()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_generated_request_as_documented(case: Any) -> None:
    # given a request generated from the schema / when / then: every check but "a schema-valid
    # request is accepted", which rules the schema cannot state break (end after start, an
    # unknown tenant is 404, a cursor this API did not issue is 422)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN[0]}"},
        excluded_checks=[positive_data_acceptance],
    )
