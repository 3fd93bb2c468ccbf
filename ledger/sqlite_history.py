"""SQLiteLogHistory: the embedded pulse log read as history (replay, reconcile)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path

from ledger.model import LogRecord, Position, from_micros, to_micros
from ledger.sqlite import _LOG_SCHEMA
from storage.sqlite import SQLiteDb


class SQLiteLogHistory:
    """Reads the `records` table of an SQLitePulseLog file; never touches group offsets."""

    def __init__(self, path: Path, partitions: int) -> None:
        self._db = SQLiteDb(path, _LOG_SCHEMA)
        self._partitions = partitions

    def bounds(self) -> dict[int, tuple[int, int]]:
        found = {
            int(str(p)): (int(str(lo)), int(str(hi)) + 1)
            for p, lo, hi in self._db.query(
                "SELECT partition, MIN(offset), MAX(offset) FROM records GROUP BY partition"
            )
        }
        return {p: found.get(p, (0, 0)) for p in range(self._partitions)}

    def offsets_at(self, moment: datetime) -> dict[int, int]:
        stamp = to_micros(moment)
        out = {}
        for p, (_low, high) in self.bounds().items():
            rows = self._db.query(
                "SELECT MIN(offset) FROM records WHERE partition = ? AND timestamp_us >= ?",
                (p, stamp),
            )
            first = rows[0][0] if rows else None
            out[p] = high if first is None else int(str(first))
        return out

    def read(
        self, start: Mapping[int, int], end: Mapping[int, int], batch: int = 5000
    ) -> Iterator[list[LogRecord]]:
        bounds = self.bounds()
        for partition, first in sorted(start.items()):
            stop = end.get(partition, bounds.get(partition, (0, 0))[1])
            offset = first
            while offset < stop:
                rows = self._db.query(
                    "SELECT offset, timestamp_us, key, value FROM records "
                    "WHERE partition = ? AND offset >= ? AND offset < ? ORDER BY offset LIMIT ?",
                    (partition, offset, stop, batch),
                )
                if not rows:
                    break
                yield [
                    LogRecord(
                        Position(partition, int(str(o))),
                        from_micros(int(str(t))),
                        bytes(k),  # type: ignore[call-overload]
                        bytes(v),  # type: ignore[call-overload]
                    )
                    for o, t, k, v in rows
                ]
                offset = int(str(rows[-1][0])) + 1

    def close(self) -> None:
        self._db.close()
