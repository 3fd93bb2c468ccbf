"""Text that is safe to store and to show: no characters that rewrite a terminal or a report."""

from __future__ import annotations

import re

# C0 controls (NUL, ESC, newline…), DEL and C1 controls; the line and paragraph separators
# (a log line split in two); the bidirectional embeddings, overrides and isolates, which make
# "txt.exe" display as "exe.txt" (Trojan Source). Zero-width joiners stay: emoji need them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def unsafe_character(value: str) -> str | None:
    """Why `value` may not be stored ("contains U+001B at 3"), or None when it is safe."""
    if value.isascii() and value.isprintable():
        return None  # printable ASCII holds none of them: the common case, without a search
    found = _UNSAFE.search(value)
    if found is None:
        return None
    return f"contains the control character U+{ord(found.group()):04X} at {found.start()}"
