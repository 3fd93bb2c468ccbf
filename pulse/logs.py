"""Log output of `pulse serve`: text for a terminal, or one JSON object per line for shipping.

Configured only by the CLI (STYLE.md). Every line carries the role (from `extra=` or the
thread that logged it) and the structured fields the caller passed with `extra=` (tenant,
positions). A last guard masks anything shaped like an API key or a bearer credential, so a
secret that slipped into a message or an exception never reaches a log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Everything a LogRecord has of its own; the rest came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# The secret of `pl_<id>_<secret>` (access.keys) and any bearer credential.
_SECRETS = re.compile(r"(pl_[0-9a-f]{16}_)[A-Za-z0-9_-]+|(Bearer\s+)\S+", re.IGNORECASE)
# Threads named after the role they run (pulse.supervision, pulse.runtime, gRPC's pool).
_ROLE_OF_THREAD = {"writer": "writer", "projector": "projector", "api": "api"}


def scrub(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def _role(record: logging.LogRecord) -> str | None:
    role = getattr(record, "role", None)
    if isinstance(role, str):
        return role
    thread = record.threadName or ""
    if thread.startswith("ingest"):
        return "ingestor"
    return _ROLE_OF_THREAD.get(thread)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO-8601), level, logger, message, role, extras;
    an exception travels in the same line as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        role = _role(record)
        if role is not None:
            line["role"] = role
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in line:
                line[name] = value if isinstance(value, int | float | bool) else scrub(str(value))
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def setup_logging(verbose: bool, log_format: str) -> None:
    """Root handler on stderr; replaces any earlier one (one configuration per process)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # a library's warning becomes one line like the rest
