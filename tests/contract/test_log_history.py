"""Contract of LogHistory (the log read outside any group), on SQLite and Apache Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.model import LogRecord
from ledger.ports import LogHistory, OutgoingRecord, PulseLog

EARLY = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LATE = EARLY + timedelta(hours=1)


def _records(prefix: str, n: int) -> list[OutgoingRecord]:
    return [OutgoingRecord(f"t{i % 3}".encode(), f"{prefix}-{i}".encode()) for i in range(n)]


def _all(
    history: LogHistory, start: dict[int, int], end: dict[int, int] | None = None
) -> list[LogRecord]:
    return [r for batch in history.read(start, end or {}, batch=7) for r in batch]


def test_bounds_cover_every_partition_and_every_record(
    log_with_history: tuple[PulseLog, LogHistory],
) -> None:
    # given
    log, history = log_with_history
    log.publish(_records("a", 20), EARLY)

    # when
    bounds = history.bounds()

    # then
    assert sum(high - low for low, high in bounds.values()) == 20
    assert all(low == 0 for low, _high in bounds.values())


def test_read_from_the_start_returns_each_record_once_in_offset_order(
    log_with_history: tuple[PulseLog, LogHistory],
) -> None:
    # given
    log, history = log_with_history
    log.publish(_records("a", 25), EARLY)
    start = {p: low for p, (low, _high) in history.bounds().items()}

    # when
    got = _all(history, start)

    # then
    assert sorted(r.value for r in got) == sorted(f"a-{i}".encode() for i in range(25))
    for p in start:
        offsets = [r.position.offset for r in got if r.position.partition == p]
        assert offsets == sorted(offsets) == list(range(len(offsets)))
    assert {r.arrival for r in got} == {EARLY}


def test_read_stops_at_the_given_end_and_starts_at_the_given_offset(
    log_with_history: tuple[PulseLog, LogHistory],
) -> None:
    # given: 12 records, then the read window is offsets [1, 3) of every partition
    log, history = log_with_history
    log.publish(_records("a", 12), EARLY)
    partitions = list(history.bounds())

    # when
    got = _all(history, dict.fromkeys(partitions, 1), dict.fromkeys(partitions, 3))

    # then
    assert got and {r.position.offset for r in got} <= {1, 2}
    per_partition = {p: [r for r in got if r.position.partition == p] for p in partitions}
    assert all(len(rs) <= 2 for rs in per_partition.values())


def test_offsets_at_a_time_skip_what_arrived_before(
    log_with_history: tuple[PulseLog, LogHistory],
) -> None:
    # given: one batch early, one late
    log, history = log_with_history
    log.publish(_records("early", 9), EARLY)
    log.publish(_records("late", 9), LATE)

    # when
    got = _all(history, history.offsets_at(LATE - timedelta(minutes=1)))

    # then
    assert sorted(r.value for r in got) == sorted(f"late-{i}".encode() for i in range(9))
    ends = {p: high for p, (_low, high) in history.bounds().items()}
    assert history.offsets_at(LATE + timedelta(hours=1)) == ends
