"""Catalog and contract reads are kept while nothing is recorded, and never outlive a change
recorded by another process (another BillingApp on the same event store)."""

from __future__ import annotations

from typing import Any

from catalog.billing import BillingApp
from catalog.files import read_catalog, read_contracts
from pulse.bootstrap import SAMPLE_CATALOG

SAMPLES = SAMPLE_CATALOG.parent


class CountingReads(BillingApp):
    """The real app, counting the aggregates it reads from the store."""

    name = "billing"
    reads = 0

    def _get(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return super()._get(*args, **kwargs)


def memory_price(app: BillingApp) -> str:
    return str(app.products()["compute.memory"].plans[0].plan.unit_price)


def test_reads_are_kept_until_another_process_records_a_change(
    event_store_env: dict[str, str],
) -> None:
    # given: a reader (the API) and an operator's process on one event store
    text = SAMPLE_CATALOG.read_text()
    operator = BillingApp(env=event_store_env)
    operator.apply_catalog(read_catalog(text))
    operator.apply_contracts(read_contracts((SAMPLES / "contracts.yaml").read_text()))
    reader = CountingReads(env=event_store_env)
    assert memory_price(reader) == "0.0061"
    contract = reader.contract("acme")
    reads = reader.reads
    # when nothing changed: no aggregate is read again
    assert memory_price(reader) == "0.0061"
    assert reader.contract("acme") == contract
    assert reader.terms_of("acme") == (reader.products(), contract)
    assert reader.reads == reads
    # when the operator reprices a product
    operator.apply_catalog(
        read_catalog(text.replace('unit_price: "0.0061"', 'unit_price: "0.007"'))
    )
    # then the reader's next reads see it
    products, _contract = reader.terms_of("acme")
    assert str(products["compute.memory"].plans[0].plan.unit_price) == "0.007"
    assert memory_price(reader) == "0.007"
    assert reader.reads > reads
    assert reader.versioned_products()["compute.memory"][1] > 1
