"""CSV holds the same rows as JSON, also when some hours' region is unknown."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from ledger.ports import LedgerStore
from projections.hourly import derive_hour
from projections.ports import UsageStore
from tests.unit.helpers import event, pulse
from tests.unit.test_usage_api import BILLING, NOVEMBER, SAME_BACKEND, Api, api, rows

__all__ = ["api"]


@pytest.mark.parametrize(("ledger_store", "usage_store"), SAME_BACKEND, indirect=True)
def test_csv_tells_an_unknown_region_from_pulses_without_one(
    api: Api, ledger_store: LedgerStore, usage_store: UsageStore
) -> None:
    # given: 10 GB at 2026-11-20 08:00 in an hour written SKU rows only (region unknown),
    # beside the fixture's 1 GB of pulses that gave no region (2026-11-02 05:00)
    hour = datetime(2026, 11, 20, 8, tzinfo=UTC)
    ledger_store.append([event(pulse("p-old", tenant=api.tenant, amount="10", at=hour), 99)])
    usage_store.replace_hour(
        api.tenant, hour, derive_hour(ledger_store.events_in_hour(api.tenant, hour), BILLING)
    )
    params = {**NOVEMBER, "granularity": "month", "group_by": "region", "sku": "network.egress"}
    # when
    body = api.get(params).json()
    text = api.get({**params, "format": "csv"}).text
    # then: JSON has two rows, region null (unknown) and "" (none given)...
    assert sorted(rows(body, "region", "quantity"), key=repr) == [
        ("", "1"),
        ("br-ne1", "0.250000000000000001"),
        ("br-se1", "3.5"),
        (None, "10"),
    ]
    # ... and CSV must not print them as two rows with the same key
    found = [(r["region"], r["attributed"], r["unit"]) for r in csv.DictReader(io.StringIO(text))]
    assert len(set(found)) == len(found), found
    assert ("", "false", "GB") in found  # JSON null: region unknown
    assert ("", "true", "GB") in found  # JSON "": the pulses gave none
