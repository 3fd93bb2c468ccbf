"""classify(): new, duplicate and conflicting events, in a batch and against the ledger."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.dedup import classify
from ledger.model import LedgerEvent
from tests.unit.helpers import event, pulse


def test_distinct_ids_are_all_new() -> None:
    # given
    events = [event(pulse("a"), 0), event(pulse("b"), 1), event(pulse("a", tenant="other"), 2)]

    # when
    result = classify(events, {})

    # then
    assert result.new == events
    assert result.duplicates == [] and result.conflicts == []


def test_same_payload_twice_in_a_batch_is_a_duplicate() -> None:
    # given: a client retry that reached the log twice
    first, retry = event(pulse("a"), 0), event(pulse("a"), 1)

    # when
    result = classify([first, retry], {})

    # then
    assert result.new == [first]
    assert result.duplicates == [retry]
    assert result.conflicts == []


def test_different_payload_in_a_batch_is_a_conflict_and_the_first_wins() -> None:
    # given
    first = event(pulse("a", amount="1"), 0)
    second = event(pulse("a", amount="2"), 1)

    # when
    result = classify([first, second], {})

    # then
    assert result.new == [first]
    assert [c.event for c in result.conflicts] == [second]
    assert result.conflicts[0].existing_hash == first.payload_hash


def test_an_id_already_in_the_ledger_is_a_duplicate_when_equal() -> None:
    # given
    stored = pulse("a")
    redelivered = event(pulse("a"), 7)

    # when
    result = classify([redelivered], {("acme", "a"): stored.payload_hash()})

    # then
    assert result.new == [] and result.conflicts == []
    assert result.duplicates == [redelivered]


def test_an_id_already_in_the_ledger_wins_over_the_batch() -> None:
    # given: the ledger holds amount 1; the batch brings amount 2 then amount 1
    stored_hash = pulse("a", amount="1").payload_hash()
    changed, same = event(pulse("a", amount="2"), 0), event(pulse("a", amount="1"), 1)

    # when
    result = classify([changed, same], {("acme", "a"): stored_hash})

    # then
    assert result.new == []
    assert [c.event for c in result.conflicts] == [changed]
    assert result.conflicts[0].existing_hash == stored_hash
    assert result.duplicates == [same]


def test_the_same_id_in_another_tenant_is_not_related() -> None:
    # given
    seen = {("acme", "a"): pulse("a", amount="1").payload_hash()}
    other = event(pulse("a", tenant="globex", amount="2"), 0)

    # when
    result = classify([other], seen)

    # then
    assert result.new == [other]


def test_seen_is_not_modified() -> None:
    # given
    seen = {("acme", "a"): pulse("a").payload_hash()}
    before = dict(seen)

    # when
    classify([event(pulse("b"), 0)], seen)

    # then
    assert seen == before


# A small alphabet makes repeated ids, retries and conflicts common.
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["acme", "globex"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["1", "1.0", "2"]),
    ),
    max_size=30,
).map(
    lambda specs: [
        event(pulse(pid, tenant=tenant, amount=amount), offset)
        for offset, (tenant, pid, amount) in enumerate(specs)
    ]
)
seen_strategy = st.dictionaries(
    st.tuples(st.sampled_from(["acme", "globex"]), st.sampled_from(["a", "b", "c", "d"])),
    st.sampled_from(["1", "2"]).map(lambda amount: pulse(amount=amount).payload_hash()),
    max_size=4,
)


@given(events=events_strategy, seen=seen_strategy)
def test_every_event_is_classified_once_and_ids_are_new_at_most_once(
    events: list[LedgerEvent], seen: dict[tuple[str, str], str]
) -> None:
    # given events in log order and ids already in the ledger

    # when
    result = classify(events, seen)

    # then
    keys = [(e.pulse.tenant_id, e.pulse.pulse_id) for e in result.new]
    assert len(keys) == len(set(keys))
    assert not set(keys) & set(seen)
    assert len(result.new) + len(result.duplicates) + len(result.conflicts) == len(events)


@given(events=events_strategy)
def test_first_occurrence_decides_for_every_later_one(events: list[LedgerEvent]) -> None:
    # given an empty ledger

    # when
    result = classify(events, {})

    # then: computed independently, walking the batch by hand
    first: dict[tuple[str, str], LedgerEvent] = {}
    for e in events:
        first.setdefault((e.pulse.tenant_id, e.pulse.pulse_id), e)
    assert result.new == list(first.values())
    for dup in result.duplicates:
        winner = first[(dup.pulse.tenant_id, dup.pulse.pulse_id)]
        assert dup is not winner and dup.pulse.used_amount == winner.pulse.used_amount
    for conflict in result.conflicts:
        winner = first[(conflict.event.pulse.tenant_id, conflict.event.pulse.pulse_id)]
        assert conflict.event.pulse.used_amount != winner.pulse.used_amount
        assert conflict.existing_hash == winner.payload_hash
