"""query.paging: cursors read back what was written, and anything else is Invalid naming it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.errors import Invalid
from query.paging import decode, encode, scope_of

keys = st.tuples(st.text(min_size=1, max_size=40), st.integers(-(2**63), 2**63 - 1))


@given(keys, st.text(max_size=20))
def test_a_cursor_reads_back_its_key(key: tuple[str, int], filters: str) -> None:
    scope = scope_of(filters)
    assert decode(encode("list", key, scope), "list", (str, int), scope) == key


@given(st.text(max_size=1024))
def test_any_other_text_is_invalid_or_a_key_never_an_error(text: str) -> None:
    try:
        found = decode(text, "list", (str, int))
    except Invalid as problem:
        assert str(problem).startswith("cursor: ")
    else:  # only a text that happens to be a cursor of this list
        assert found is not None and encode("list", found).rstrip("=") == text.rstrip("=")


@given(keys, st.data())
def test_a_changed_character_is_refused(key: tuple[str, int], data: st.DataObject) -> None:
    cursor = encode("list", key)
    # the last character may carry unused base64 bits: change one before it
    at = data.draw(st.integers(0, len(cursor) - 2))
    other = data.draw(st.sampled_from("ABCabc012-_").filter(lambda c: c != cursor[at]))
    with pytest.raises(Invalid):
        decode(cursor[:at] + other + cursor[at + 1 :], "list", (str, int))


@pytest.mark.parametrize(
    ("kind", "shape", "scope"),
    [
        ("other", (str, int), ""),
        ("list", (str,), ""),
        ("list", (int, int), ""),
        ("list", (str, int), "x"),
    ],
)
def test_a_cursor_of_another_list_shape_or_query_is_refused(
    kind: str, shape: tuple[type, ...], scope: str
) -> None:
    with pytest.raises(Invalid, match=r"^cursor: "):
        decode(encode("list", ("a", 1)), kind, shape, scope)
