"""The ingestor publishes each pulse's bytes as received: hostile encodings must still give
records that decode to exactly the pulse validation saw, and never a false conflict."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestor import server as server_module
from ingestor.core import check_batch
from ingestor.hosting import create_server
from ingestor.server import IngestServicer
from ingestor.wire import Layout, layout
from ledger import codec
from ledger.model import Pulse, from_micros, to_micros
from ledger.sqlite import SQLitePulseLog
from ledger.sqlite_store import SQLiteLedgerStore
from ledger.writer import LedgerWriter
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient
from tests.unit.helpers import SKEW, catalog

MAX_BATCH = 50
ACCEPTED = pulse_pb2.PulseResult.ACCEPTED
AT = datetime.now(UTC).replace(microsecond=123456) - timedelta(minutes=1)
SECONDS, NANOS = to_micros(AT) // 1_000_000, to_micros(AT) % 1_000_000 * 1000


# --- a hand encoder: any field order, repeats, unknown fields, non-canonical varints ---


def varint(value: int, width: int = 0) -> bytes:
    """`value` as a varint of at least `width` bytes (padded with 0x80 continuation bytes:
    non-canonical, yet valid protobuf)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value or len(out) + 1 < width:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int, width: int = 0) -> bytes:
    return varint(number << 3 | wire_type, width)


def text(number: int, value: str | bytes, *, tag_width: int = 0, len_width: int = 0) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return tag(number, 2, tag_width) + varint(len(data), len_width) + data


def number(field: int, value: int) -> bytes:
    return tag(field, 0) + varint(value)


def timestamp(seconds: int | None = SECONDS, nanos: int | None = NANOS) -> bytes:
    parts = b""
    if seconds is not None:
        parts += number(1, seconds)
    if nanos is not None:
        parts += number(2, nanos)
    return text(6, parts)


def attribute(key: str, value: str) -> bytes:
    return text(10, text(1, key) + text(2, value))


def fields(pulse_id: str, tenant: str = "acme", amount: str = "1.5") -> list[bytes]:
    """The fields of a valid pulse, one element each, in field-number order."""
    return [
        text(1, pulse_id),
        text(2, tenant),
        text(3, "network.egress"),
        text(4, amount),
        text(5, "GB"),
        timestamp(),
    ]


def request(*pulses: bytes, junk: bytes = b"") -> bytes:
    """An IngestRequest: `junk` (other top-level fields) before each pulse."""
    return b"".join(junk + text(1, p) for p in pulses)


def expected(
    pulse_id: str,
    *,
    tenant: str = "acme",
    amount: str = "1.5",
    attributes: tuple[tuple[str, str], ...] = (),
) -> Pulse:
    return Pulse(
        pulse_id=pulse_id,
        tenant_id=tenant,
        product_sku="network.egress",
        used_amount=Decimal(amount),
        use_unit="GB",
        occurred_at=from_micros(to_micros(AT)),
        attributes=attributes,
    )


# Unknown top-level fields, including field 1 with the wrong wire types (a parser skips
# them: they are not pulses) and a group that holds a field 1 of wire type 2 of its own.
TOP_LEVEL_JUNK = (
    text(2, b"\x0a\x00not a pulse")
    + number(1, 7)
    + tag(1, 5)
    + b"\x01\x02\x03\x04"
    + tag(1, 1)
    + b"12345678"
    + tag(1, 3)
    + text(1, b"\x0a\x03bad")
    + tag(1, 4)
    + text(15, b"")
)


# --- the walk on its own ---


def test_the_walk_takes_field_one_of_wire_type_two_only_and_each_whole() -> None:
    # given: pulses behind unknown fields, one behind a non-canonical tag, one behind a
    # non-canonical length
    a, b, c = (b"".join(fields(name)) for name in ("a", "b", "c"))
    data = (
        TOP_LEVEL_JUNK
        + text(1, a)
        + TOP_LEVEL_JUNK
        + text(1, b, tag_width=3)
        + text(1, c, len_width=5)
    )

    # when
    walked = layout(data, 1000)

    # then: each slice is the pulse the parser sees at that place, byte for byte
    parsed = pulse_pb2.IngestRequest.FromString(data).pulses
    assert walked.pulses == [a, b, c]
    assert [pulse_pb2.Pulse.FromString(p) for p in walked.pulses] == list(parsed)
    assert walked.fields == 2 * 6 + 3  # a group counts as one field


def test_the_walk_gives_no_pulses_when_it_cannot_finish() -> None:
    # given: truncated bytes, an unclosed group, too many fields
    one = text(1, b"".join(fields("a")))

    # when / then
    assert layout(one[:-1], 1000).pulses is None
    assert layout(tag(2, 3) + one, 1000).pulses is None
    assert layout(one * 3, 1).pulses is None
    assert layout(one * 3, 3).pulses == [b"".join(fields("a"))] * 3


# --- through the real server, over the SQLite pulse log ---


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SQLitePulseLog]:
    pulse_log = SQLitePulseLog(tmp_path / "log.sqlite", partitions=3)
    yield pulse_log
    pulse_log.close()


@pytest.fixture
def client(log: SQLitePulseLog) -> Iterator[IngestClient]:
    servicer = IngestServicer(
        log, catalog().billing_unit, max_batch=MAX_BATCH, future_skew=SKEW, auth=None
    )
    server, port = create_server(servicer, "127.0.0.1:0", max_message_bytes=4 * 1024 * 1024)
    server.start()
    ingest = IngestClient(f"127.0.0.1:{port}")
    yield ingest
    ingest.close()
    server.stop(None).wait()


def stored(log: SQLitePulseLog, group: str = "inspect") -> list[tuple[bytes, bytes]]:
    return [(r.key, r.value) for r in log.consumer(group).poll(1_000_000, 0)]


HOSTILE: dict[str, tuple[bytes, Pulse]] = {
    "fields in reverse order": (b"".join(reversed(fields("p1"))), expected("p1")),
    "a repeated field: the last one wins": (
        text(1, "first") + text(4, "99") + b"".join(fields("p2")) + text(1, "p2-last"),
        expected("p2-last"),
    ),
    "occurred_at split in two: merged": (
        b"".join(fields("p3")[:5]) + timestamp(nanos=None) + timestamp(seconds=None),
        expected("p3"),
    ),
    "unknown fields inside": (
        number(99, 5) + b"".join(fields("p4")) + text(100, b"\xff\xfe") + tag(101, 5) + b"abcd",
        expected("p4"),
    ),
    "a known field with another wire type is unknown": (
        b"".join(fields("p5")) + number(4, 12) + tag(1, 5) + b"wxyz",
        expected("p5"),
    ),
    "non-canonical tags and lengths": (
        text(1, "p6", tag_width=4, len_width=3)
        + b"".join(
            text(n, v, tag_width=2, len_width=2)
            for n, v in ((2, "acme"), (3, "network.egress"), (4, "1.5"), (5, "GB"))
        )
        + tag(6, 2, 5)
        + varint(len(timestamp()) - 2, 4)
        + timestamp()[2:],
        expected("p6"),
    ),
    "a repeated attribute key: the last one wins": (
        b"".join(fields("p7"))
        + attribute("k", "old")
        + attribute("z", "1")
        + attribute("k", "new"),
        expected("p7", attributes=(("k", "new"), ("z", "1"))),
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_encoding_is_stored_as_the_pulse_validation_saw(
    case: str, client: IngestClient, log: SQLitePulseLog
) -> None:
    # given
    encoded, pulse = HOSTILE[case]
    data = request(encoded, junk=TOP_LEVEL_JUNK)

    # when
    reply = client.ingest_bytes(data)

    # then
    assert [(r.status, r.pulse_id) for r in reply.results] == [(ACCEPTED, pulse.pulse_id)]
    [(key, value)] = stored(log)
    assert key == b"acme"
    assert codec.decode(value) == pulse


def test_records_follow_their_pulses_past_rejected_ones_and_junk(
    client: IngestClient, log: SQLitePulseLog
) -> None:
    # given: valid, invalid, valid (another tenant), with unknown top-level fields between
    good1 = b"".join(fields("g1"))
    bad = b"".join(fields("bad", amount="-1"))
    good2 = b"".join(reversed(fields("g2", tenant="globex", amount="2.25")))

    # when
    reply = client.ingest_bytes(request(good1, bad, good2, junk=TOP_LEVEL_JUNK))

    # then
    assert [r.field for r in reply.results] == ["", "used_amount", ""]
    records = sorted(stored(log))
    assert records == sorted([(b"acme", good1), (b"globex", good2)])
    assert [codec.decode(v) for _k, v in sorted(records)] == [
        expected("g1"),
        expected("g2", tenant="globex", amount="2.25"),
    ]


def test_when_the_walk_and_the_parser_disagree_the_parsed_pulses_are_encoded_again(
    client: IngestClient, log: SQLitePulseLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a walk that (wrongly) missed a pulse: its bytes cannot be matched to the
    # parser's pulses one for one
    good1 = b"".join(reversed(fields("g1")))
    good2 = b"".join(fields("g2", tenant="globex"))

    def short_walk(data: bytes, stop_after: int) -> Layout:
        walked = layout(data, stop_after)
        assert walked.pulses is not None
        return Layout(walked.fields, walked.pulses[1:])

    monkeypatch.setattr(server_module, "layout", short_walk)
    # when
    reply = client.ingest_bytes(request(good1, good2))
    # then: both stored, each encoded from what the parser (and validation) saw
    assert [r.status for r in reply.results] == [ACCEPTED, ACCEPTED]
    records = sorted(stored(log))
    assert [codec.decode(v) for _k, v in records] == [
        expected("g1"),
        expected("g2", tenant="globex"),
    ]
    assert records[0][1] != good1  # not the received bytes: encoded again, in field order


def test_a_resend_in_another_encoding_is_a_duplicate_not_a_conflict(
    client: IngestClient, log: SQLitePulseLog, tmp_path: Path
) -> None:
    # given: the same pulse sent twice, the second time encoded otherwise
    first = b"".join(fields("r1"))
    second = b"".join(reversed(fields("r1", amount="1.50"))) + number(99, 1)
    client.ingest_bytes(request(first))
    client.ingest_bytes(request(second, junk=TOP_LEVEL_JUNK))
    assert len({value for _key, value in stored(log)}) == 2  # the log holds both encodings

    # when
    store = SQLiteLedgerStore(tmp_path / "ledger.sqlite")
    writer = LedgerWriter(log, store, log.consumer("writer"), poll_timeout=0)
    report = writer.run_once()

    # then
    assert (report.written, report.duplicates, report.conflicts) == (1, 1, 0)
    assert store.conflicts("acme") == []
    assert log.dead_letters(10) == []
    store.close()


def test_a_group_first_does_not_hide_the_batch_size(client: IngestClient) -> None:
    # given: an unknown group, then more empty pulses than a batch may hold
    data = tag(2, 3) + text(1, "x") + tag(2, 4) + text(1, b"") * (MAX_BATCH + 1)

    # when
    with pytest.raises(grpc.RpcError) as refused:
        client.ingest_bytes(data)

    # then: refused by the count taken before parsing ("at least"), not after
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at least" in (refused.value.details() or "")


# --- any encoding: the walk, the parser and the decoder agree ---

_KNOWN = st.sampled_from(
    [
        text(1, "pid"),
        text(1, "pid-2"),
        text(2, "acme"),
        text(2, "globex"),
        text(3, "network.egress"),
        text(4, "1.5"),
        text(4, "0.000"),
        text(5, "GB"),
        text(5, "MB"),
        timestamp(),
        timestamp(seconds=None),
        timestamp(nanos=None),
        text(7, "vm-1"),
        attribute("k", "v"),
        attribute("k", "w"),
        number(4, 3),
        text(99, b"\x00\xff"),
        number(98, 2**40),
        tag(97, 1) + b"8 bytes!",
    ]
)
_PULSE = st.lists(_KNOWN, max_size=12).map(b"".join)
_TOP_JUNK = st.sampled_from([b"", text(2, "x"), number(1, 1), tag(3, 3) + text(1, "g") + tag(3, 4)])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_TOP_JUNK, _PULSE, st.integers(0, 3)), min_size=1, max_size=8))
def test_any_encoding_is_published_as_what_validation_saw(
    parts: list[tuple[bytes, bytes, int]],
) -> None:
    # given: pulses of any field order, repeats and unknown fields, behind any junk, each
    # behind a tag of any width
    data = b"".join(junk + tag(1, 2, width) + varint(len(p)) + p for junk, p, width in parts)
    parsed = pulse_pb2.IngestRequest.FromString(data).pulses
    walked = layout(data, 1000)
    assert walked.pulses is not None

    # when
    checked = check_batch(
        parsed, datetime.now(UTC), SKEW, catalog().billing_unit, encoded=walked.pulses
    )

    # then: every record decodes as the parsed pulse's own encoding does
    assert len(walked.pulses) == len(parsed)
    accepted = [
        m for m, r in zip(parsed, checked.response.results, strict=True) if r.status == ACCEPTED
    ]
    assert [codec.decode(r.value) for r in checked.records] == [
        codec.decode(m.SerializeToString()) for m in accepted
    ]
