"""Operator YAML files (catalog, contracts) -> validated terms; problems named by line and field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from catalog.terms import (
    MINOR_UNITS,
    ContractTerms,
    ContractVersion,
    Discount,
    PlanKind,
    PlanVersion,
    PricePlan,
    ProductTerms,
    Tier,
)
from kernel import units
from kernel.text import unsafe_character

# Operator files are small: these bounds make reading one cheap whatever its content.
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 16  # the deepest real structure (tiers of an override) is 7 levels
# Plain ASCII decimals only: Decimal() alone would also take "1_000", Arabic-Indic digits
# and "1e999999" (which no invoice can ever print or sum).
_PLAIN_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,30})?")


class FileProblems(ValueError):
    """A file that fails validation; `problems` lists every one of them ("line N: field: why")."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s):\n" + "\n".join(problems))
        self.problems = problems


@dataclass
class _Node:
    """A YAML value with the line it starts on (1-based)."""

    value: Any
    line: int


class _BoundedLoader(yaml.SafeLoader):
    """Composes nodes without aliases and at most MAX_DEPTH deep.

    An alias makes one node reachable many times: nine nested lists of nine aliases ("billion
    laughs") expand to 10^9 values, and an alias inside its own anchor never ends.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in pulse-ledger files", mark
            )
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"values nest more than {MAX_DEPTH} levels deep", mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_file(path: Path) -> str:
    """The text of an operator file: at most MAX_FILE_BYTES, strictly UTF-8."""
    with path.open("rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise FileProblems([f"line 1: the file is larger than {MAX_FILE_BYTES} bytes"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileProblems([f"line {line}: not UTF-8 text (byte {exc.start})"]) from None


def _wrap(node: yaml.Node, path: str = "file") -> _Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        entries: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            _refuse_unsafe(key, key_node, f"{path} key {key[:40]!a}")
            entries[key] = _wrap(value_node, f"{path}.{key}")
        return _Node(entries, line)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_wrap(v, f"{path}[{i}]") for i, v in enumerate(node.value)], line)
    if node.tag == "tag:yaml.org,2002:null" or node.value in ("null", "~", ""):
        return _Node(None, line)
    _refuse_unsafe(str(node.value), node, path)
    return _Node(str(node.value), line)  # scalars stay text: no float ever touches a price


def _refuse_unsafe(text: str, node: yaml.Node, where: str) -> None:
    """No value of an operator file may carry terminal escapes or bidi overrides: names and
    SKUs reach terminals (`catalog show`) and invoices."""
    unsafe = unsafe_character(text)
    if unsafe:
        raise FileProblems([f"line {node.start_mark.line + 1}: {where}: {unsafe}"])


def parse(text: str) -> _Node:
    if len(text) > MAX_FILE_BYTES:
        raise FileProblems([f"line 1: the file is larger than {MAX_FILE_BYTES} characters"])
    try:
        root = yaml.compose(text, Loader=_BoundedLoader)
    except yaml.YAMLError as exc:
        raise FileProblems([f"not valid YAML: {exc}"]) from None
    if root is None:
        raise FileProblems(["line 1: the file is empty"])
    return _wrap(root)


class _Reader:
    """Collects problems while reading fields, so one run reports all of them."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, node: _Node, where: str, why: str) -> None:
        self.problems.append(f"line {node.line}: {where}: {why}")

    def mapping(self, node: _Node, where: str) -> dict[str, _Node] | None:
        if not isinstance(node.value, dict):
            self.fail(node, where, "expected a mapping")
            return None
        return node.value

    def sequence(self, node: _Node | None, where: str, parent: _Node) -> list[_Node]:
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, list):
            self.fail(node, where, "expected a list")
            return []
        return node.value

    def text(self, m: dict[str, _Node], key: str, where: str, parent: _Node) -> str:
        node = m.get(key)
        if node is None or not isinstance(node.value, str) or not node.value.strip():
            self.fail(node or parent, f"{where}.{key}", "required text")
            return ""
        return node.value

    def decimal(
        self, m: dict[str, _Node], key: str, where: str, parent: _Node, *, required: bool = True
    ) -> Decimal | None:
        node = m.get(key)
        if node is None or node.value is None:
            if required:
                self.fail(parent, f"{where}.{key}", "required decimal")
            return None
        if not isinstance(node.value, str) or not _PLAIN_DECIMAL.fullmatch(node.value):
            self.fail(
                node,
                f"{where}.{key}",
                f"{str(node.value)[:40]!r} is not a plain decimal >= 0 "
                "(ASCII digits, an optional point: 12.5)",
            )
            return None
        return Decimal(node.value)

    def day(self, m: dict[str, _Node], key: str, where: str, parent: _Node) -> date | None:
        node = m.get(key)
        if node is None or not isinstance(node.value, str):
            self.fail(node or parent, f"{where}.{key}", "required date (YYYY-MM-DD)")
            return None
        try:
            return date.fromisoformat(node.value)
        except ValueError:
            self.fail(node, f"{where}.{key}", f"{node.value!r} is not a date (YYYY-MM-DD)")
            return None

    def unknown_keys(self, m: dict[str, _Node], allowed: set[str], where: str) -> None:
        for key, node in m.items():
            if key not in allowed:
                self.fail(node, f"{where}.{key}", f"unknown field (allowed: {sorted(allowed)})")


_PLAN_KEYS = {"kind", "unit_price", "tiers", "package_size", "package_price", "minimum_charge"}


def _plan(r: _Reader, node: _Node, where: str) -> PricePlan | None:
    m = r.mapping(node, where)
    if m is None:
        return None
    r.unknown_keys(m, _PLAN_KEYS | {"effective_from"}, where)
    kind_text = r.text(m, "kind", where, node)
    try:
        kind = PlanKind(kind_text)
    except ValueError:
        if kind_text:
            r.fail(
                m["kind"],
                f"{where}.kind",
                f"{kind_text!r} is not one of {[k.value for k in PlanKind]}",
            )
        return None
    minimum = r.decimal(m, "minimum_charge", where, node, required=False) or Decimal(0)
    if kind is PlanKind.PER_UNIT:
        price = r.decimal(m, "unit_price", where, node)
        return PricePlan(kind, unit_price=price or Decimal(0), minimum_charge=minimum)
    if kind is PlanKind.PACKAGE:
        size = r.decimal(m, "package_size", where, node)
        price = r.decimal(m, "package_price", where, node)
        if size is not None and size == 0:
            r.fail(m["package_size"], f"{where}.package_size", "must be > 0")
        return PricePlan(
            kind,
            package_size=size or Decimal(1),
            package_price=price or Decimal(0),
            minimum_charge=minimum,
        )
    tiers: list[Tier] = []
    tier_nodes = r.sequence(m.get("tiers"), f"{where}.tiers", node)
    if not tier_nodes:
        r.fail(node, f"{where}.tiers", f"a {kind.value} plan needs at least one tier")
    for i, tier_node in enumerate(tier_nodes):
        tw = f"{where}.tiers[{i}]"
        tm = r.mapping(tier_node, tw)
        if tm is None:
            continue
        r.unknown_keys(tm, {"up_to", "unit_price"}, tw)
        up_to = r.decimal(tm, "up_to", tw, tier_node, required=False)
        price = r.decimal(tm, "unit_price", tw, tier_node)
        if up_to is None and i != len(tier_nodes) - 1:
            r.fail(tier_node, f"{tw}.up_to", "only the last tier may be open-ended")
        if up_to is not None and tiers and tiers[-1].up_to is not None and up_to <= tiers[-1].up_to:
            r.fail(tier_node, f"{tw}.up_to", "tiers must have increasing up_to")
        tiers.append(Tier(up_to, price or Decimal(0)))
    if tiers and tiers[-1].up_to is not None:
        r.fail(node, f"{where}.tiers", "the last tier must be open-ended (up_to: null)")
    return PricePlan(kind, tiers=tuple(tiers), minimum_charge=minimum)


def read_catalog(text: str) -> list[ProductTerms]:
    """Products of a catalog file; raises FileProblems listing every problem."""
    r = _Reader()
    root = parse(text)
    top = r.mapping(root, "file")
    products: list[ProductTerms] = []
    seen: set[str] = set()
    first: tuple[str, str, str] | None = None  # where, sku, currency of the first product
    for i, node in enumerate(r.sequence((top or {}).get("products"), "products", root)):
        where = f"products[{i}]"
        m = r.mapping(node, where)
        if m is None:
            continue
        r.unknown_keys(m, {"sku", "name", "category", "billing_unit", "currency", "plans"}, where)
        sku = r.text(m, "sku", where, node)
        unit = r.text(m, "billing_unit", where, node)
        if unit and not units.is_known(unit):
            r.fail(m["billing_unit"], f"{where}.billing_unit", f"unknown unit {unit!r}")
        currency = m["currency"].value if "currency" in m else "BRL"
        if currency not in MINOR_UNITS:
            r.fail(m["currency"], f"{where}.currency", f"unknown currency {currency!r}")
        # An invoice has one currency, the catalog's (pricing cannot sum across them): a
        # product valid alone must still agree with the first one, or every draft fails.
        if first is None:
            first = (where, sku, str(currency))
        elif currency != first[2]:
            r.fail(
                m.get("currency", node),
                f"{where}.currency",
                f"{currency!r} for {sku}, but {first[0]} ({first[1]}) is in {first[2]!r}:"
                " one catalog, one currency",
            )
        if sku in seen:
            r.fail(node, f"{where}.sku", f"{sku!r} is listed twice")
        seen.add(sku)
        versions: list[PlanVersion] = []
        for j, plan_node in enumerate(r.sequence(m.get("plans"), f"{where}.plans", node)):
            pw = f"{where}.plans[{j}]"
            pm = r.mapping(plan_node, pw)
            if pm is None:
                continue
            day = r.day(pm, "effective_from", pw, plan_node)
            plan = _plan(r, plan_node, pw)
            if day and plan:
                if any(v.effective_from == day for v in versions):
                    r.fail(plan_node, f"{pw}.effective_from", f"{day} is used twice")
                versions.append(PlanVersion(day, plan))
        products.append(
            ProductTerms(
                sku,
                r.text(m, "name", where, node),
                r.text(m, "category", where, node),
                unit,
                str(currency),
                tuple(sorted(versions, key=lambda v: v.effective_from)),
            )
        )
    if top is not None and "products" not in top:
        r.fail(root, "products", "required list of products")
    if r.problems:
        raise FileProblems(r.problems)
    return products


def read_contracts(text: str) -> list[ContractTerms]:
    """Contracts of a contracts file; raises FileProblems listing every problem."""
    r = _Reader()
    root = parse(text)
    top = r.mapping(root, "file")
    out: list[ContractTerms] = []
    seen: set[str] = set()
    for i, node in enumerate(r.sequence((top or {}).get("contracts"), "contracts", root)):
        where = f"contracts[{i}]"
        m = r.mapping(node, where)
        if m is None:
            continue
        r.unknown_keys(m, {"tenant_id", "amendments"}, where)
        tenant = r.text(m, "tenant_id", where, node)
        if tenant in seen:
            r.fail(node, f"{where}.tenant_id", f"{tenant!r} is listed twice")
        seen.add(tenant)
        versions: list[ContractVersion] = []
        for j, a_node in enumerate(r.sequence(m.get("amendments"), f"{where}.amendments", node)):
            version = _amendment(r, a_node, f"{where}.amendments[{j}]")
            if version is not None:
                if any(v.effective_from == version.effective_from for v in versions):
                    r.fail(a_node, f"{where}.amendments[{j}].effective_from", "date used twice")
                versions.append(version)
        out.append(ContractTerms(tenant, tuple(sorted(versions, key=lambda v: v.effective_from))))
    if top is not None and "contracts" not in top:
        r.fail(root, "contracts", "required list of contracts")
    if r.problems:
        raise FileProblems(r.problems)
    return out


def _amendment(r: _Reader, node: _Node, where: str) -> ContractVersion | None:
    m = r.mapping(node, where)
    if m is None:
        return None
    r.unknown_keys(
        m, {"effective_from", "discounts", "overrides", "allowances", "commitment"}, where
    )
    day = r.day(m, "effective_from", where, node)
    discounts = []
    for k, d_node in enumerate(r.sequence(m.get("discounts"), f"{where}.discounts", node)):
        dw = f"{where}.discounts[{k}]"
        dm = r.mapping(d_node, dw)
        if dm is None:
            continue
        r.unknown_keys(dm, {"percent", "sku", "category"}, dw)
        percent = r.decimal(dm, "percent", dw, d_node)
        if percent is not None and percent > 100:
            r.fail(dm["percent"], f"{dw}.percent", "must be between 0 and 100")
        sku = dm["sku"].value if "sku" in dm else None
        category = dm["category"].value if "category" in dm else None
        if sku and category:
            r.fail(d_node, dw, "give sku or category, not both")
        discounts.append(Discount(percent or Decimal(0), sku, category))
    overrides = []
    over = m.get("overrides")
    for sku, plan_node in (r.mapping(over, f"{where}.overrides") or {}).items() if over else []:
        plan = _plan(r, plan_node, f"{where}.overrides.{sku}")
        if plan is not None:
            overrides.append((sku, plan))
    allowances = []
    allow = m.get("allowances")
    for sku, a_node in (r.mapping(allow, f"{where}.allowances") or {}).items() if allow else []:
        amount = r.decimal({"v": a_node}, "v", f"{where}.allowances.{sku}", a_node)
        if amount is not None:
            allowances.append((sku, amount))
    commitment = r.decimal(m, "commitment", where, node, required=False) or Decimal(0)
    if day is None:
        return None
    return ContractVersion(
        day,
        tuple(discounts),
        tuple(sorted(overrides, key=lambda o: o[0])),
        tuple(sorted(allowances)),
        commitment,
    )
