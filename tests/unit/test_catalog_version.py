"""The catalog's version, as every role loads it, orders re-derivations of the same events: after
`pulse catalog apply` and `pulse rebuild`, a process still on the old catalog cannot put the
old units back."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.products import (
    CATALOG_VERSIONS,
    MAX_EPOCH,
    MeteredProduct,
    ProductCatalog,
    catalog_version,
)
from projections.runner import project_hours
from pulse.bootstrap import SAMPLE_CATALOG, build
from pulse.cli import app
from pulse.settings import Backend, EmbeddedSettings, Settings
from tests.unit.helpers import T0, event, pulse

SKU = "storage.object"


def products(**units: str) -> list[MeteredProduct]:
    return [MeteredProduct(sku, sku, "c", unit) for sku, unit in units.items()]


def test_a_later_epoch_outranks_an_earlier_one_whatever_the_units() -> None:
    for old, new in [
        (products(a="GB"), products(a="MB")),
        (products(a="MB"), products(a="GB")),
        (products(a="GB", b="h"), products(a="GB")),
    ]:
        assert catalog_version(1, new) > catalog_version(0, old)
        assert catalog_version(8, new) > catalog_version(7, old)
        assert catalog_version(8, old) > catalog_version(7, new)


def test_equal_versions_mean_equal_units_and_different_units_differ_at_one_epoch() -> None:
    # the SKU -> unit map alone counts: not the order, names or anything else
    same = [MeteredProduct("b", "B", "x", "h"), MeteredProduct("a", "A", "y", "GB", "USD")]
    assert catalog_version(3, same) == catalog_version(3, products(a="GB", b="h"))
    assert catalog_version(3, products(a="GB")) != catalog_version(3, products(a="MB"))
    assert catalog_version(0, products(a="GB")) != catalog_version(0, products(a="GB", b="h"))


def test_catalog_versions_beyond_what_stamps_can_order_are_refused() -> None:
    assert catalog_version(MAX_EPOCH, products(a="GB")) < CATALOG_VERSIONS
    with pytest.raises(ValueError, match="epoch"):
        catalog_version(MAX_EPOCH + 1, products(a="GB"))
    with pytest.raises(ValueError, match="catalog version"):
        ProductCatalog(products(a="GB"), version=-1)


def without_the_sku(tmp_path: Path) -> Path:
    """The sample catalog with SKU's entry cut out."""
    text = SAMPLE_CATALOG.read_text()
    entries = re.split(r"(?m)^(?=  - sku: )", text)
    kept = [e for e in entries if not e.startswith(f"  - sku: {SKU}\n")]
    assert len(kept) == len(entries) - 1
    path = tmp_path / "catalog.yaml"
    path.write_text("".join(kept))
    return path


def test_after_apply_and_rebuild_a_process_on_the_old_catalog_cannot_undo_it(
    tmp_path: Path,
) -> None:
    # given: the ledger holds a pulse of a SKU the catalog file lacks, and a process (the
    # live projector) started on that file
    data = tmp_path / "data"
    settings = Settings(
        backend=Backend.EMBEDDED,
        embedded=EmbeddedSettings(path=data),
        catalog_file=without_the_sku(tmp_path),
    )
    stale = build(settings)
    try:
        stale.ledger.append([event(pulse("p-1", tenant="acme", sku=SKU, unit="GB-hour"))])
        project_hours([("acme", T0)], stale.ledger, stale.usage, stale.catalog)
        env = {"PULSE_EMBEDDED__PATH": str(data), "PULSE_CATALOG_FILE": str(settings.catalog_file)}
        runner = CliRunner()
        # when: the operator applies the catalog that has it and rebuilds
        for command in (["catalog", "apply", str(SAMPLE_CATALOG)], ["rebuild"]):
            done = runner.invoke(app, [*command, "--embedded"], env=env)
            assert done.exit_code == 0, done.output
        rebuilt = stale.usage.usage("acme", T0, T0 + timedelta(hours=1))
        # ... and then the old process re-derives the hour (e.g. a redelivered batch)
        project_hours(
            [("acme", T0)],
            stale.ledger,
            stale.usage,
            stale.catalog,
        )
        # then: the rebuild's rows, priced in the applied catalog's unit, stay
        after = stale.usage.usage("acme", T0, T0 + timedelta(hours=1))
        assert [(r.unit, r.unpriced_reason) for r in after] == [("GB-hour", "")]
        assert after == rebuilt
        assert after[0].catalog_version > stale.catalog.version
    finally:
        stale.close()
