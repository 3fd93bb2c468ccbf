"""The top-level layout of a serialized IngestRequest, read without parsing it (pure).

Two uses: counting the fields bounds a request before the parser turns it into objects,
and each pulse's bytes as received become the log record, so that a pulse is not encoded
again. A protobuf parser treats field 1 with wire type 2 as `pulses` (whatever the tag's
encoding), skips every other field as unknown, and merges repeated fields *inside* a pulse
the same way whether it parses the request or the pulse's bytes alone: so the i-th field 1
of wire type 2 parses to exactly `request.pulses[i]`.
"""

from __future__ import annotations

from dataclasses import dataclass

PULSES_TAG = (1 << 3) | 2  # IngestRequest.pulses = 1, length-delimited
_START_GROUP, _END_GROUP = 3, 4


@dataclass(frozen=True, slots=True)
class Layout:
    """`fields`: top-level fields counted, up to the bound + 1. `pulses`: each pulse's
    encoding as received, in order; None when the walk stopped early (malformed bytes or
    past the bound), so that the caller encodes the parsed pulses itself."""

    fields: int
    pulses: list[bytes] | None


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise IndexError("truncated varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def layout(data: bytes, stop_after: int) -> Layout:
    """Walks the top-level fields of `data` (and skips groups whole) up to `stop_after` + 1
    fields: a 4 MiB request of empty pulses would parse into 2 million objects (350 MB)
    before its batch size could be checked. Malformed input returns what was counted so
    far; the parser then reports it."""
    count, at, end, depth = 0, 0, len(data), 0
    pulses: list[bytes] | None = []
    try:
        while at < end and count <= stop_after:
            tag = data[at]
            if tag < 0x80:  # one-byte tags (fields 1-15): the common case, without a call
                at += 1
            else:
                tag, at = _varint(data, at)
            wire_type = tag & 7
            if wire_type == 2:
                length = data[at]
                if length < 0x80:
                    at += 1
                else:
                    length, at = _varint(data, at)
                start, at = at, at + length
                if tag == PULSES_TAG and depth == 0 and pulses is not None:
                    pulses.append(data[start:at])
            elif wire_type == 0:
                _, at = _varint(data, at)
            elif wire_type == 1:
                at += 8
            elif wire_type == 5:
                at += 4
            elif wire_type == _START_GROUP:
                depth += 1  # an unknown group: its fields are its own, counted as one
                continue
            elif wire_type == _END_GROUP and depth > 0:
                depth -= 1
            else:
                break
            if depth == 0:
                count += 1
    except IndexError:
        pass
    if at != end or depth != 0:
        pulses = None  # stopped early: what was collected may not be every pulse
    return Layout(count, pulses)
