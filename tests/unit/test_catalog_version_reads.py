"""How a process gets its catalog version: equal versions must mean equal catalogs, or their
derivations of the same events would be stored mixed (Cassandra) or the older one put back
(SQLite). A change of the catalog while a process loads it must not give one catalog the
version of another."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from catalog.aggregates import CATALOG_INDEX_ID
from catalog.files import read_catalog
from catalog.products import ProductCatalog
from catalog.terms import ProductTerms
from pulse import bootstrap
from pulse.bootstrap import SAMPLE_CATALOG, billing_app, load_catalog
from pulse.settings import Backend, EmbeddedSettings, Settings

A = "network.egress"


def test_a_catalog_read_torn_by_two_applies_does_not_share_a_version_with_another_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the event-sourced catalog holds A, billed in GB
    settings = Settings(backend=Backend.EMBEDDED, embedded=EmbeddedSettings(path=tmp_path))
    operator = billing_app(settings)
    a = next(p for p in read_catalog(SAMPLE_CATALOG.read_text()) if p.sku == A)
    b = ProductTerms("storage.object", "Object storage", "storage", "GB-hour", a.currency, ())
    operator.apply_catalog([a])
    loaded: dict[str, ProductCatalog] = {}

    # and: while one process starts (it has read the catalog index, not yet product A), the
    # operator applies a catalog that adds B, a second process starts (it loads A in GB and
    # B), and the operator applies a catalog that bills A in MB
    starting = billing_app(settings)
    inner = starting._get

    def get(key: UUID, kind: type[Any], version: int | None = None) -> Any:
        found = inner(key, kind, version)
        if key == CATALOG_INDEX_ID and not loaded:
            operator.apply_catalog([b])
            second = billing_app(settings)
            loaded["second"] = load_catalog(settings, second)
            second.close()
            operator.apply_catalog([dataclasses.replace(a, billing_unit="MB")])
        return found

    monkeypatch.setattr(starting, "_get", get)
    # when: the first process finishes loading (A as it is now, in MB; no B in its index)
    first = load_catalog(settings, starting)
    second = loaded["second"]
    starting.close()
    operator.close()
    # then: two catalogs that bill A differently do not carry the same version
    assert (first.billing_unit(A), second.billing_unit(A)) == ("MB", "GB")
    assert first.version != second.version, f"both at version {first.version}"


def test_a_catalog_file_saved_while_a_process_loads_it_does_not_share_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a catalog file that bills A in GB, last saved long ago
    path = tmp_path / "catalog.yaml"
    path.write_text(SAMPLE_CATALOG.read_text())
    os.utime(path, (1_780_000_000, 1_780_000_000))
    settings = Settings(
        backend=Backend.EMBEDDED, embedded=EmbeddedSettings(path=tmp_path), catalog_file=path
    )
    billing = billing_app(settings)
    entry = "  - sku: network.egress\n    name: Internet egress\n    category: network\n"
    in_mb = SAMPLE_CATALOG.read_text().replace(
        f"{entry}    billing_unit: GB\n", f"{entry}    billing_unit: MB\n"
    )
    assert in_mb != SAMPLE_CATALOG.read_text()
    real_read = read_catalog

    def read_then_the_operator_saves(text: str) -> list[ProductTerms]:
        terms = real_read(text)
        path.write_text(in_mb)  # saved (an hour later) after the contents were read ...
        os.utime(path, (1_780_003_600, 1_780_003_600))
        return terms

    # when: a process reads the file's contents, the operator saves it, the process stats it
    monkeypatch.setattr(bootstrap, "read_catalog", read_then_the_operator_saves)
    first = load_catalog(settings, billing)
    monkeypatch.setattr(bootstrap, "read_catalog", real_read)
    # ... and a process started after the save loads the new contents
    second = load_catalog(settings, billing)
    billing.close()
    # then: the two catalogs bill A differently, so they must not carry the same version
    assert (first.billing_unit(A), second.billing_unit(A)) == ("GB", "MB")
    assert first.version != second.version, f"both at version {first.version}"
