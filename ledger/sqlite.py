"""SQLitePulseLog: the embedded pulse log (partitions, offsets, groups) in one SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from ledger.model import LogRecord, Position, from_micros, to_micros
from ledger.ports import DeadLetter, LogConsumer, OutgoingRecord
from storage.sqlite import SQLiteDb

_LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  partition INTEGER NOT NULL, offset INTEGER NOT NULL, timestamp_us INTEGER NOT NULL,
  key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (partition, offset));
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT, partition INTEGER, offset INTEGER, timestamp_us INTEGER,
  key BLOB, value BLOB, reason TEXT NOT NULL, detail TEXT NOT NULL,
  UNIQUE (partition, offset, reason));
CREATE TABLE IF NOT EXISTS group_offsets (
  grp TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (grp, partition));
CREATE TABLE IF NOT EXISTS partition_ends (
  partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL);
"""


def partition_of(key: bytes, partitions: int) -> int:
    """Stable key -> partition, so that all pulses of a tenant keep their order."""
    return zlib.crc32(key) % partitions


class SQLitePulseLog:
    """A partitioned append-only log with consumer-group offsets, in one SQLite file."""

    def __init__(self, path: Path, partitions: int) -> None:
        self._db = SQLiteDb(path, _LOG_SCHEMA)
        self.partitions = partitions
        with self._db.tx() as conn:
            # Logs written before partition_ends existed: their ends, found once at start.
            conn.execute(
                "INSERT OR IGNORE INTO partition_ends "
                "SELECT partition, MAX(offset) + 1 FROM records GROUP BY partition"
            )

    def publish(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        stamp = to_micros(arrival)
        with self._db.tx() as conn:
            # The next offset of each partition is kept in partition_ends, updated in the same
            # transaction as the records: a publish reads a few rows, not the whole log, and
            # other processes on the same file (the write lock is SQLite's) see it too.
            ends = self._ends(conn)
            start = dict(ends)
            for record in records:
                part = partition_of(record.key, self.partitions)
                offset = ends.get(part, 0)
                ends[part] = offset + 1
                conn.execute(
                    "INSERT INTO records VALUES (?, ?, ?, ?, ?)",
                    (part, offset, stamp, record.key, record.value),
                )
            conn.executemany(
                "INSERT INTO partition_ends VALUES (?, ?) ON CONFLICT (partition) "
                "DO UPDATE SET next_offset = excluded.next_offset",
                [(p, n) for p, n in ends.items() if start.get(p) != n],
            )

    async def publish_async(self, records: Sequence[OutgoingRecord], arrival: datetime) -> None:
        # SQLite commits with an fsync that would stall the event loop: a worker thread waits.
        await asyncio.to_thread(self.publish, records, arrival)

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        with self._db.tx() as conn:
            for letter in letters:
                rec = letter.record
                conn.execute(
                    "INSERT OR IGNORE INTO dead_letters "
                    "(partition, offset, timestamp_us, key, value, reason, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        rec.position.partition,
                        rec.position.offset,
                        to_micros(rec.arrival),
                        rec.key,
                        rec.value,
                        letter.reason,
                        letter.detail,
                    ),
                )

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = self._db.query(
            "SELECT partition, offset, timestamp_us, key, value, reason, detail "
            "FROM dead_letters ORDER BY id LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(
                LogRecord(Position(int(p), int(o)), from_micros(int(t)), bytes(k), bytes(v)),  # type: ignore[call-overload]
                str(reason),
                str(detail),
            )
            for p, o, t, k, v, reason, detail in rows
        ]

    def consumer(self, group: str) -> LogConsumer:
        return _SQLiteConsumer(self, group)

    def committed(self, group: str) -> dict[int, int]:
        rows = self._db.query(
            "SELECT partition, next_offset FROM group_offsets WHERE grp = ?", (group,)
        )
        return {int(p): int(o) for p, o in rows}  # type: ignore[call-overload]

    def end_offsets(self) -> dict[int, int]:
        rows = self._db.query("SELECT partition, next_offset FROM partition_ends")
        ends = {int(p): int(o) for p, o in rows}  # type: ignore[call-overload]
        return {p: ends.get(p, 0) for p in range(self.partitions)}

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _ends(conn: sqlite3.Connection) -> dict[int, int]:
        rows = conn.execute("SELECT partition, next_offset FROM partition_ends")
        return {int(p): int(o) for p, o in rows}

    # used by the consumer
    def _read(self, part: int, start: int, limit: int, stop: int | None) -> list[LogRecord]:
        sql = (
            "SELECT offset, timestamp_us, key, value FROM records "
            "WHERE partition = ? AND offset >= ?"
        )
        args: list[object] = [part, start]
        if stop is not None:
            sql += " AND offset < ?"
            args.append(stop)
        rows = self._db.query(sql + " ORDER BY offset LIMIT ?", [*args, limit])
        return [
            LogRecord(Position(part, int(o)), from_micros(int(t)), bytes(k), bytes(v))  # type: ignore[call-overload]
            for o, t, k, v in rows
        ]

    def _commit(self, group: str, next_offsets: Mapping[int, int]) -> None:
        with self._db.tx() as conn:
            for part, nxt in next_offsets.items():
                conn.execute(
                    "INSERT INTO group_offsets VALUES (?, ?, ?) ON CONFLICT (grp, partition) "
                    "DO UPDATE SET next_offset = excluded.next_offset",
                    (group, part, nxt),
                )


class _SQLiteConsumer:
    """Single-process consumer: positions start at the group's committed offsets."""

    def __init__(self, log: SQLitePulseLog, group: str) -> None:
        self._log = log
        self._group = group
        committed = log.committed(group)
        self._next = {p: committed.get(p, 0) for p in range(log.partitions)}
        self._first = 0  # the partition served first, rotating

    def poll(
        self, max_records: int, timeout: float, below: Mapping[int, int] | None = None
    ) -> list[LogRecord]:
        n = self._log.partitions
        order = [(self._first + i) % n for i in range(n)]
        self._first = (self._first + 1) % n
        parts = [p for p in order if below is None or p in below]
        out: list[LogRecord] = []
        # Fair shares first, then what is left to partitions with more: a backlog in one
        # partition never starves the others, and a batch is still filled when it can be.
        share = -(-max_records // max(len(parts), 1))
        for quota in (share, max_records):
            for part in parts:
                room = min(quota, max_records - len(out))
                if room <= 0:
                    break
                stop = None if below is None else below[part]
                got = self._log._read(part, self._next[part], room, stop)
                if got:
                    self._next[part] = got[-1].position.offset + 1
                out.extend(got)
        if not out and timeout > 0:
            threading.Event().wait(min(timeout, 0.05))
        return out

    def commit(self, records: Sequence[LogRecord]) -> None:
        nxt: dict[int, int] = {}
        for rec in records:
            part, off = rec.position.partition, rec.position.offset
            nxt[part] = max(nxt.get(part, 0), off + 1)
        if nxt:
            self._log._commit(self._group, nxt)

    def seek(self, positions: Sequence[Position]) -> None:
        for pos in positions:
            self._next[pos.partition] = pos.offset

    def close(self) -> None:
        pass
