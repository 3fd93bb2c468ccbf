"""What every `pulse` command shares: settings built once, consoles, input parsing, exit codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from kernel.errors import Conflict, Invalid, LedgerError, NotFound, Unavailable
from pulse.settings import Backend, Settings, load_settings

console = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_FAILURE, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4

Embedded = Annotated[bool, typer.Option(help="use the embedded SQLite backends")]


def settings(embedded: bool = False) -> Settings:
    """The effective settings (PULSE_* variables); `--embedded` forces the embedded backend."""
    found = load_settings()
    return found.model_copy(update={"backend": Backend.EMBEDDED}) if embedded else found


def parse_time(text: str, option: str) -> datetime:
    """An ISO date or time as an aware UTC datetime (a naive one is taken as UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{option}: {text!r} is not an ISO date or time (e.g. 2026-11-01)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def invalid(message: str) -> NoReturn:
    raise Invalid(message)


# The one error -> (label, exit code) map of the command line; order matters (subclasses first).
EXIT_CODES: tuple[tuple[type[BaseException], str, int], ...] = (
    (ValidationError, "invalid settings", EXIT_INVALID),  # PULSE_* variables
    (Invalid, "invalid", EXIT_INVALID),
    (NotFound, "not found", EXIT_NOT_FOUND),
    (Unavailable, "unavailable", EXIT_UNAVAILABLE),
    (Conflict, "conflict", EXIT_FAILURE),
    (LedgerError, "error", EXIT_FAILURE),
)


def exit_code(error: BaseException) -> int | None:
    """Prints `error` as one line and returns its exit code; None when it is not categorized."""
    for kind, label, code in EXIT_CODES:
        if isinstance(error, kind):
            err.print(f"[red]{label}:[/] {error}", highlight=False)
            return code
    return None
