"""Opaque page cursors and bounded page sizes, shared by every list route of the read API.

A cursor is the sort key of the last item a page returned, so the next page starts strictly
after it: items that existed when paging began are listed exactly once, in the same order on
every page, however many items are added meanwhile (an offset would shift under inserts).

The key travels as base64url JSON with the list it belongs to (`kind`), a fingerprint of the
query's filters (`scope`) and a checksum. The checksum is not a secret: it catches a cursor
that was truncated, edited or copied from another list or query, which then gets a 422
instead of a silently wrong page. Forging one gains nothing: the tenant is checked on every
request and a cursor only says where to resume inside what the caller may already read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from kernel.errors import Invalid
from ledger.model import from_micros

DEFAULT_PAGE, MAX_PAGE = 100, 1000
MAX_CURSOR = 1024

Limit = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE, description=f"items per page, 1 to {MAX_PAGE}", examples=[100]),
]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR,
        description="`next_cursor` of the previous page, unchanged; omit for the first page",
    ),
]

_BAD = "cursor: not a cursor this API returned for this list (pass next_cursor back unchanged)"


def _check(kind: str, scope: str, key: Sequence[Any]) -> str:
    text = json.dumps([kind, scope, list(key)], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scope_of(*filters: object) -> str:
    """A short fingerprint of a query's filters: a cursor only resumes the query it came from."""
    text = json.dumps([str(f) if f is not None else None for f in filters])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode(kind: str, key: Sequence[str | int], scope: str = "") -> str:
    """The cursor that resumes list `kind` (filtered as `scope`) after `key`."""
    body = [kind, scope, list(key), _check(kind, scope, key)]
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(
    cursor: str | None, kind: str, shape: Sequence[type], scope: str = ""
) -> tuple[Any, ...] | None:
    """The key inside `cursor` (None for the first page); Invalid, naming `cursor`, when it is
    malformed, altered, of another list, or of the same list with other filters."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_kind, got_scope, key, check = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise Invalid(_BAD) from None
    if got_kind != kind or not isinstance(key, list) or len(key) != len(shape):
        raise Invalid(_BAD)
    # `type(...) is`: bool is an int to isinstance, and no key of ours holds one.
    if not all(type(value) is wanted for value, wanted in zip(key, shape, strict=True)):
        raise Invalid(_BAD)
    if check != _check(kind, got_scope, key):
        raise Invalid(_BAD)
    if got_scope != scope:
        raise Invalid("cursor: it belongs to the same list with other filters; start again")
    return tuple(key)


def moment(micros: int) -> datetime:
    """A cursor's time (microseconds since the epoch); Invalid when no datetime has it."""
    try:
        return from_micros(micros)
    except (OverflowError, ValueError, OSError):
        raise Invalid(_BAD) from None
