"""The billing application on eventsourcing's SQLite module: applying files records events."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from catalog.billing import BillingApp
from catalog.files import read_catalog, read_contracts
from kernel.errors import Conflict

SAMPLES = Path(__file__).resolve().parents[2] / "pulse" / "sample"


def app(tmp_path: Path) -> BillingApp:
    return BillingApp(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    )


def recorded(billing: BillingApp) -> int:
    return billing.recorder.max_notification_id() or 0


def test_applying_the_same_catalog_twice_records_nothing_the_second_time(tmp_path: Path) -> None:
    # given
    billing = app(tmp_path)
    products = read_catalog((SAMPLES / "catalog.yaml").read_text())
    # when
    first = billing.apply_catalog(products)
    after_first = recorded(billing)
    second = billing.apply_catalog(products)
    # then
    assert "product compute.vcpu: registered" in first
    assert second == []
    assert recorded(billing) == after_first
    assert set(billing.products()) == {p.sku for p in products}


def test_a_changed_price_is_a_new_event_and_old_versions_stay_readable(tmp_path: Path) -> None:
    # given
    billing = app(tmp_path)
    text = (SAMPLES / "catalog.yaml").read_text()
    billing.apply_catalog(read_catalog(text))
    old_versions = billing.product_versions()
    # when
    changed = text.replace('unit_price: "0.0061"', 'unit_price: "0.0070"')
    notes = billing.apply_catalog(read_catalog(changed))
    # then
    assert notes == ["product compute.memory: plan from 2026-01-01"]
    new = billing.products()["compute.memory"].plans[0].plan.unit_price
    old = billing.products_at(old_versions)["compute.memory"].plans[0].plan.unit_price
    assert (str(old), str(new)) == ("0.0061", "0.0070")


def test_contracts_apply_and_amend(tmp_path: Path) -> None:
    # given
    billing = app(tmp_path)
    contracts = read_contracts((SAMPLES / "contracts.yaml").read_text())
    # when
    billing.apply_contracts(contracts)
    again = billing.apply_contracts(contracts)
    found = billing.contract("globex")
    # then
    assert again == []
    assert found is not None
    terms, version = found
    assert str(terms.versions[0].commitment) == "2500.00"
    assert billing.contract_at("globex", version) == terms
    assert billing.contract("nobody") is None
    assert sorted(billing.tenants_with_contracts()) == ["acme", "globex"]


def test_a_product_in_another_currency_than_the_recorded_catalog_is_refused(
    tmp_path: Path,
) -> None:
    # given: the sample catalog, all in BRL, recorded
    billing = app(tmp_path)
    billing.apply_catalog(read_catalog((SAMPLES / "catalog.yaml").read_text()))
    before = recorded(billing)
    # when: a file, valid on its own, adds a product in USD
    usd = read_catalog(
        "products: [{sku: gpu.a100, name: GPU, category: compute,"
        " billing_unit: vCPU-hour, currency: USD}]"
    )
    with pytest.raises(Conflict) as caught:
        billing.apply_catalog(usd)
    # then: refused with the products and currencies named, nothing recorded
    assert "gpu.a100" in str(caught.value)
    assert "USD" in str(caught.value) and "BRL" in str(caught.value)
    assert recorded(billing) == before
    assert "gpu.a100" not in billing.products()


def test_finalized_periods_are_indexed_per_tenant_once(tmp_path: Path) -> None:
    # given
    billing = app(tmp_path)
    pins: dict[str, object] = {"positions": {}, "products": {}, "contract": None}
    # when
    billing.record_finalized("acme", "2026-10", "{}", "a" * 64, pins)
    billing.record_finalized("acme", "2026-09", "{}", "b" * 64, pins)
    billing.record_finalized("globex", "2026-10", "{}", "c" * 64, pins)
    with pytest.raises(Conflict):
        billing.record_finalized("acme", "2026-10", "{}", "d" * 64, pins)
    # then
    assert billing.invoice_periods("acme") == ["2026-10", "2026-09"]
    assert billing.invoice_periods("globex") == ["2026-10"]
    assert billing.invoice_periods("nobody") == []


class RacingIndex(BillingApp):
    """Both finalizers read the tenant's invoice index before either saves."""

    barrier: threading.Barrier

    def _index(self, key: Any, kind: str) -> Any:
        index = super()._index(key, kind)
        if kind.startswith("invoices:") and not getattr(self, "raced", False):
            self.raced = True
            self.barrier.wait(timeout=30)
        return index


def test_two_periods_of_a_tenant_finalized_at_once_are_both_recorded_and_indexed(
    tmp_path: Path,
) -> None:
    # given: two processes' billing apps on one event store
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "b.db")}
    first, second = RacingIndex(env=env), RacingIndex(env=env)
    first.barrier = second.barrier = threading.Barrier(2)
    pins: dict[str, object] = {"positions": {}, "products": {}, "contract": None}
    errors: list[BaseException] = []

    def finalize(billing: BillingApp, period: str) -> None:
        try:
            billing.record_finalized("acme", period, "{}", "a" * 64, pins)
        except BaseException as exc:
            errors.append(exc)

    # when
    threads = [
        threading.Thread(target=finalize, args=(first, "2026-09")),
        threading.Thread(target=finalize, args=(second, "2026-10")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # then: the index refusal of one was retried, not reported as "already finalized"
    assert errors == []
    assert sorted(first.invoice_periods("acme")) == ["2026-09", "2026-10"]
    assert first.invoice("acme", "2026-09") is not None
    assert first.invoice("acme", "2026-10") is not None
