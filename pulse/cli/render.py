"""Terminal and JSON renderings of usage (CLI only)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from rich.table import Table

from kernel.decimals import EXACT, plain
from projections.hourly import HourlyUsage


def usage_rows(rows: Sequence[HourlyUsage], granularity: str) -> list[dict[str, str]]:
    """Rows as plain dicts with exact decimal strings, rolled up by hour or by day."""
    groups: dict[tuple[str, str, str], list[HourlyUsage]] = defaultdict(list)
    for row in rows:
        period = row.hour.strftime("%Y-%m-%dT%H:00Z" if granularity == "hour" else "%Y-%m-%d")
        groups[(period, row.product_sku, row.unit)].append(row)
    out = []
    for (period, sku, unit), members in sorted(groups.items()):
        total = Decimal(0)
        for member in members:
            total = EXACT.add(total, member.quantity)
        out.append(
            {
                "period": period,
                "product_sku": sku,
                "unit": unit,
                "quantity": plain(total),
                "pulses": str(sum(m.pulse_count for m in members)),
                "priced": "yes" if all(m.priced for m in members) else "no",
                "note": next((m.unpriced_reason for m in members if m.unpriced_reason), ""),
            }
        )
    return out


def usage_table(title: str, rows: list[dict[str, str]]) -> Table:
    table = Table(title=title)
    for name, justify in (
        ("period", "left"),
        ("product_sku", "left"),
        ("quantity", "right"),
        ("unit", "left"),
        ("pulses", "right"),
        ("priced", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row["period"],
            row["product_sku"],
            row["quantity"],
            row["unit"],
            row["pulses"],
            row["priced"] if not row["note"] else f"no: {row['note']}",
        )
    return table


def usage_json(tenant: str, rows: list[dict[str, str]]) -> str:
    return json.dumps({"tenant_id": tenant, "usage": rows}, indent=2)
