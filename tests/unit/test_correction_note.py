"""Correction notes are frozen values; the stored Corrected event keeps the form older notes
were recorded in, so they still load."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from catalog.billing import BillingApp
from catalog.invoice import CorrectionLine, CorrectionNote, Pins

# A note as the first versions recorded it (a dict built by hand in projections/invoices.py).
OLDER_PAYLOAD: dict[str, Any] = {
    "document": '{"currency":"BRL"}',
    "sha256": "b" * 64,
    "lines": [
        {
            "sku": "network.egress",
            "segment_start": "2026-10-01T00:00:00+00:00",
            "kind": "usage",
            "quantity_delta": "500",
            "amount_delta": "225",
        }
    ],
    "total": "225",
    "pins": {"positions": {"2": 3, "0": 11}, "products": {"network.egress": 2}, "contract": None},
}


def test_a_note_recorded_in_the_older_form_loads_as_a_correction_note(tmp_path: Path) -> None:
    # given: an invoice with a note stored the way the first versions stored it
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b")}
    app = BillingApp(env=env)
    pins = {"positions": {"0": 7}, "products": {"network.egress": 2}, "contract": None}
    invoice = app.record_finalized("acme", "2026-10", "{}", "a" * 64, pins)
    invoice.correct(**OLDER_PAYLOAD)
    app.save(invoice)

    # when: read back by another process
    stored = BillingApp(env=env).invoice("acme", "2026-10")
    assert stored is not None
    [note] = stored.notes()

    # then
    assert note.references == "a" * 64
    assert note.total == Decimal(225) and note.kind == "debit" and note.title == "debit note"
    assert note.lines == (
        CorrectionLine(
            "network.egress", datetime(2026, 10, 1, tzinfo=UTC), "usage", Decimal(500), Decimal(225)
        ),
    )
    assert note.pins == Pins(((0, 11), (2, 3)), (("network.egress", 2),), None)
    assert json.loads(json.dumps(note.payload())) == OLDER_PAYLOAD  # stored form unchanged


def test_a_note_is_frozen_and_its_json_is_canonical() -> None:
    # given
    note = CorrectionNote.from_payload(OLDER_PAYLOAD, "a" * 64)
    # when / then
    with pytest.raises(dataclasses.FrozenInstanceError):
        note.total = Decimal(0)  # type: ignore[misc]
    text = note.canonical_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert "document" not in json.loads(text)
    assert json.loads(text)["references"] == "a" * 64
    assert CorrectionNote.from_payload(note.payload(), note.references) == note
