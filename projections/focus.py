"""The FOCUS export use case: which invoice document a month's rows come from."""

from __future__ import annotations

from catalog.focus import Row, draft_from_json, draft_rows, finalized_rows
from projections.invoices import Invoicing


def focus_rows(invoicing: Invoicing, tenant_id: str, period: str) -> list[Row]:
    """FOCUS 1.0 rows of the tenant's month: the finalized invoice and its correction notes
    when the month is finalized (what was billed), else the live draft (what would be)."""
    invoice = invoicing.finalized(tenant_id, period)
    if invoice is None:
        return draft_rows(invoicing.draft(tenant_id, period))
    return finalized_rows(draft_from_json(invoice.document), invoice.notes())
