"""Catalog and contract files: every problem reported with line and field; values exact."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.files import MAX_FILE_BYTES, FileProblems, read_catalog, read_contracts, read_file
from catalog.terms import PlanKind

SAMPLES = Path(__file__).resolve().parents[2] / "pulse" / "sample"


def test_sample_files_parse() -> None:
    # given / when
    products = read_catalog((SAMPLES / "catalog.yaml").read_text())
    contracts = read_contracts((SAMPLES / "contracts.yaml").read_text())
    # then
    by_sku = {p.sku: p for p in products}
    assert by_sku["compute.vcpu"].plans[1].effective_from == date(2026, 11, 15)
    assert by_sku["storage.object"].plans[0].plan.kind is PlanKind.VOLUME
    assert by_sku["api.requests"].plans[0].plan.package_size == Decimal(10000)
    assert {c.tenant_id for c in contracts} == {"acme", "globex"}


def test_prices_are_read_as_exact_decimals_not_floats() -> None:
    # given: 0.1 has no exact float; written unquoted, YAML would make it a float
    text = """
products:
  - sku: a
    name: A
    category: c
    billing_unit: GB
    plans:
      - {effective_from: 2026-01-01, kind: per_unit, unit_price: 0.1000000000000000000001}
"""
    # when
    [product] = read_catalog(text)
    # then
    assert product.plans[0].plan.unit_price == Decimal("0.1000000000000000000001")


def test_every_problem_is_reported_with_its_line() -> None:
    # given
    text = """products:
  - sku: a
    name: A
    category: c
    billing_unit: parsecs
    plans:
      - {effective_from: 2026-02-30, kind: per_unit, unit_price: "1"}
      - {effective_from: 2026-03-01, kind: graduated, tiers: [{up_to: "10", unit_price: "-1"}]}
  - sku: a
    name: Again
    category: c
    billing_unit: GB
    colour: blue
"""
    # when
    with pytest.raises(FileProblems) as caught:
        read_catalog(text)
    # then
    problems = caught.value.problems
    assert "line 5: products[0].billing_unit: unknown unit 'parsecs'" in problems
    assert any(p.startswith("line 7: products[0].plans[0].effective_from") for p in problems)
    assert any("line 8" in p and "unit_price" in p and ">= 0" in p for p in problems)
    assert any("line 8" in p and "open-ended" in p for p in problems)
    assert any(p.startswith("line 9: products[1].sku") and "twice" in p for p in problems)
    assert any(p.startswith("line 13: products[1].colour: unknown field") for p in problems)


def test_contract_problems_are_reported() -> None:
    # given
    text = """contracts:
  - tenant_id: acme
    amendments:
      - effective_from: 2026-01-01
        discounts: [{percent: "120"}, {percent: "5", sku: x, category: y}]
        allowances: {network.egress: "NaN"}
"""
    # when
    with pytest.raises(FileProblems) as caught:
        read_contracts(text)
    # then
    problems = caught.value.problems
    assert any("discounts[0].percent" in p and "between 0 and 100" in p for p in problems)
    assert any("discounts[1]" in p and "not both" in p for p in problems)
    assert any("allowances.network.egress" in p for p in problems)


@pytest.mark.parametrize("text", ["", "just text", "products: 3", "[1, 2]", "a: [unclosed"])
def test_malformed_files_are_rejected_with_a_reason(text: str) -> None:
    # given / when / then
    with pytest.raises(FileProblems) as caught:
        read_catalog(text)
    assert caught.value.problems


def test_a_catalog_mixing_currencies_is_rejected_naming_products_and_currencies() -> None:
    # given: each product valid alone, but an invoice has one currency (the catalog's)
    text = """products:
  - {sku: a, name: A, category: c, billing_unit: GB, currency: BRL}
  - {sku: b, name: B, category: c, billing_unit: GB, currency: USD}
  - {sku: c, name: C, category: c, billing_unit: GB}
  - {sku: d, name: D, category: c, billing_unit: GB, currency: EUR}
"""
    # when
    with pytest.raises(FileProblems) as caught:
        read_catalog(text)
    # then: the first product's currency is the catalog's; each other one is named
    assert caught.value.problems == [
        "line 3: products[1].currency: 'USD' for b, but products[0] (a) is in 'BRL':"
        " one catalog, one currency",
        "line 5: products[3].currency: 'EUR' for d, but products[0] (a) is in 'BRL':"
        " one catalog, one currency",
    ]


# --- hostile files: bounded work, a clear problem, nothing half-read ------------------------

PRODUCT = """products:
  - sku: a
    name: A
    category: c
    billing_unit: GB
    plans:
      - {{effective_from: 2026-01-01, kind: per_unit, unit_price: {price}}}
"""


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        previous = chr(ord("a") + i - 1)
        name = chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    lines.append(f"products: *{chr(ord('a') + levels - 1)}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (billion_laughs(), "alias"),
        ("products: &x [*x]\n", "alias"),
        ("products: " + "[" * 200 + "]" * 200 + "\n", "nest"),
        ("products: " + "{a: " * 200 + "1" + "}" * 200 + "\n", "nest"),
    ],
    ids=["billion-laughs", "recursive-alias", "deep-lists", "deep-mappings"],
)
def test_aliases_and_deep_nesting_are_refused_quickly(text: str, reason: str) -> None:
    # given / when
    with pytest.raises(FileProblems) as raised:
        read_catalog(text)

    # then
    assert reason in str(raised.value)


@pytest.mark.parametrize(
    "price",
    [
        "1_000",
        "\u0661\u0662\u0663",
        "1e999999",
        "1E5",
        "0x10",
        "+1",
        "1.",
        ".5",
        "\u0661.\u0665",
        "NaN",
        "-1",
    ],
)
def test_prices_accept_only_plain_ascii_decimals(price: str) -> None:
    # given / when
    with pytest.raises(FileProblems) as raised:
        read_catalog(PRODUCT.format(price=f'"{price}"'))

    # then
    assert "unit_price" in str(raised.value)


@pytest.mark.parametrize("price", ["0", "12", "12.5", "0.000000000001", "1000000"])
def test_plain_ascii_prices_are_read_exactly(price: str) -> None:
    # given / when
    products = read_catalog(PRODUCT.format(price=price))

    # then
    assert products[0].plans[0].plan.unit_price == Decimal(price)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sku", "a\x1b[2J"),
        ("name", "A\x1b]0;pwned\x07"),
        ("category", "c\u202e"),
        ("name", "A\x00"),
    ],
)
def test_skus_and_names_with_control_characters_are_refused(field: str, value: str) -> None:
    # given
    text = PRODUCT.format(price="1").replace(
        {"sku": "sku: a", "name": "name: A", "category": "category: c"}[field],
        f"{field}: {json.dumps(value)}",
    )

    # when
    with pytest.raises(FileProblems) as raised:
        read_catalog(text)

    # then
    assert field in str(raised.value)


def test_files_that_are_not_utf8_or_too_large_are_refused(tmp_path: Path) -> None:
    # given
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(
        PRODUCT.format(price="1").replace("name: A", "name: Caf\xe9").encode("latin-1")
    )
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"# " + b"x" * (MAX_FILE_BYTES + 1) + b"\n")

    # when / then
    with pytest.raises(FileProblems, match="UTF-8"):
        read_file(latin1)
    with pytest.raises(FileProblems, match="bytes"):
        read_file(huge)
