"""The embedded pulse log stays cheap as it grows and serves its partitions fairly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ledger.ports import OutgoingRecord
from ledger.sqlite import SQLitePulseLog, partition_of

ARRIVAL = datetime(2026, 11, 1, 12, tzinfo=UTC)


def key_of(partition: int, partitions: int) -> bytes:
    return next(
        k for i in range(1000) if partition_of(k := f"t{i}".encode(), partitions) == partition
    )


def vm_steps(log: SQLitePulseLog, action: Callable[[], None]) -> int:
    """Work done by SQLite for `action`, in virtual-machine steps: unlike seconds, it does
    not depend on the machine or on fsync."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn = log._db._conn  # the log's only connection: every statement of `action` runs on it
    conn.set_progress_handler(count, 100)
    try:
        action()
    finally:
        conn.set_progress_handler(None, 0)
    return steps


def test_a_publish_costs_the_same_at_a_thousand_and_at_a_hundred_thousand_records(
    tmp_path: Path,
) -> None:
    # given
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=3)
    one = [OutgoingRecord(b"acme", b"v")]
    log.publish([OutgoingRecord(f"t{i}".encode(), b"v") for i in range(1_000)], ARRIVAL)
    small = vm_steps(log, lambda: log.publish(one, ARRIVAL))
    log.publish([OutgoingRecord(f"t{i}".encode(), b"v") for i in range(99_000)], ARRIVAL)
    # when
    large = vm_steps(log, lambda: log.publish(one, ARRIVAL))
    # then: no scan of the log per publish (offsets still dense and per partition)
    assert large <= 2 * max(small, 1), (small, large)
    ends = log.end_offsets()
    assert sum(ends.values()) == 100_002
    log.close()


def test_a_backlog_in_one_partition_does_not_starve_the_others(tmp_path: Path) -> None:
    # given: 50 records waiting in partition 0, then one in partition 1
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=2)
    log.publish([OutgoingRecord(key_of(0, 2), f"p0-{i}".encode()) for i in range(50)], ARRIVAL)
    log.publish([OutgoingRecord(key_of(1, 2), b"p1-0")], ARRIVAL)
    consumer = log.consumer("g")
    # when
    batch = consumer.poll(10, 0)
    # then: the first batch already holds partition 1's record, and is still full
    assert b"p1-0" in [r.value for r in batch]
    assert len(batch) == 10
    log.close()


def test_offsets_continue_after_a_restart(tmp_path: Path) -> None:
    # given
    log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=1)
    log.publish([OutgoingRecord(b"k", b"a"), OutgoingRecord(b"k", b"b")], ARRIVAL)
    log.close()
    # when
    again = SQLitePulseLog(tmp_path / "log.sqlite", partitions=1)
    again.publish([OutgoingRecord(b"k", b"c")], ARRIVAL)
    # then
    assert [r.position.offset for r in again.consumer("g").poll(10, 0)] == [0, 1, 2]
    again.close()
