"""The `pulse dev up|down|status` commands: local Kafka and Cassandra for development and tests."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

if TYPE_CHECKING:
    from devtools.config import DevSettings
    from devtools.layout import DevServerError
    from devtools.servers import DevEndpoints

MISSING_DEVTOOLS = (
    "pulse dev needs the devtools/ folder of a pulse-ledger checkout, which the wheel does not "
    "ship: run it from a clone (pip install -e '.[dev]'), with Java 17 and Maven on PATH"
)

dev_app = typer.Typer(
    help=(
        "Run Apache Kafka 4 (KRaft) and Apache Cassandra 5 on 127.0.0.1 as plain java "
        "processes (jars from Maven Central; Java 17 and Maven needed, Docker not). "
        "Jars, data and logs live under PULSE_DEV__HOME (default .pulse-dev)."
    ),
    no_args_is_help=True,
)


def _progress(message: str) -> None:
    # Progress goes to stderr so that stdout is only the export lines: eval "$(pulse dev up)".
    typer.echo(message, err=True)


def _devtools() -> ModuleType:
    """devtools/ of the checkout this `pulse` runs from (an editable install), if there is one."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "devtools" / "__init__.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        from devtools import servers
    except ImportError:
        typer.echo(MISSING_DEVTOOLS, err=True)
        raise typer.Exit(1) from None
    return servers


def _dev_settings() -> DevSettings:
    _devtools()
    from devtools.config import DevSettings

    try:
        return DevSettings()
    except ValidationError as error:
        typer.echo(f"invalid settings (PULSE_DEV__* environment):\n{error}", err=True)
        raise typer.Exit(1) from error


def _fail(action: str, error: DevServerError) -> typer.Exit:
    typer.echo(f"pulse dev {action} failed: {error}", err=True)
    return typer.Exit(1)


def export_lines(found: DevEndpoints) -> list[str]:
    """Shell lines that point the app and the tests' fixtures at these servers."""
    return [
        f"# Kafka bootstrap: {found.kafka_bootstrap}",
        f"# CQL: {found.cql_host}:{found.cql_port}",
        "export PULSE_BACKEND=servers",
        f"export PULSE_KAFKA__BOOTSTRAP_SERVERS={found.kafka_bootstrap}",
        f"export PULSE_CQL__CONTACT_POINTS={found.cql_host}",
        f"export PULSE_CQL__PORT={found.cql_port}",
    ]


@dev_app.command()
def up() -> None:
    """Start Kafka and Cassandra (or reuse running ones) and print how to reach them.

    The first run resolves about 110 MB of jars with Maven.
    Later runs reuse the jars and the data: topics and keyspaces survive down/up.
    Ports: PULSE_DEV__KAFKA_PORT, PULSE_DEV__CQL_PORT, ... (PULSE_DEV__* variables).

    Example:

        pulse dev up               # progress on stderr, export lines on stdout
        eval "$(pulse dev up)"     # start and point this shell at the servers
    """
    dev = _dev_settings()
    devservers = _devtools()
    try:
        found = devservers.up(dev, echo=_progress)
    except devservers.DevServerError as error:
        raise _fail("up", error) from None
    for line in export_lines(found):
        typer.echo(line)
    _progress("stop them with: pulse dev down")


@dev_app.command()
def down() -> None:
    """Stop the servers of `pulse dev up`: SIGTERM, then SIGKILL after a timeout.

    Only the processes recorded in PULSE_DEV__HOME/run/*.pid are signalled.
    Data stays on disk; delete PULSE_DEV__HOME/data for a clean slate.

    Example:

        pulse dev down
        pulse dev down && rm -rf .pulse-dev/data   # forget all topics and tables
    """
    devservers = _devtools()
    try:
        devservers.down(_dev_settings(), echo=_progress)
    except devservers.DevServerError as error:
        raise _fail("down", error) from None


@dev_app.command()
def status() -> None:
    """Show each server's state (ready, not answering, stopped), pid, memory and log.

    Example:

        pulse dev status
    """
    for server in _devtools().status(_dev_settings()):
        pid = f"pid {server.pid}" if server.pid else "-"
        rss = f"RSS {server.rss_kib // 1024} MiB" if server.rss_kib else "-"
        typer.echo(
            f"{server.name:<10} {server.state:<14} {pid:<11} {server.endpoint:<16} "
            f"{rss:<13} log {server.log_file}"
        )


ring_app = typer.Typer(
    help=(
        "A 3-node Cassandra ring on 127.0.0.2-4 (ports 9042 and 7000 on each, JMX off, "
        "heaps PULSE_DEV__RING_HEAP=448m) beside the single node of `pulse dev up`, for the "
        "real failure tests. Data, logs and pid files under PULSE_DEV__HOME/ring."
    ),
    no_args_is_help=True,
)
dev_app.add_typer(ring_app, name="ring")


def _ring() -> ModuleType:
    _devtools()
    from devtools import ring

    return ring


@ring_app.command("up")
def ring_up(
    node: Annotated[
        str | None, typer.Option(help="start only this node (node1, node2, ...)")
    ] = None,
) -> None:
    """Start the ring's nodes that are not running; wait until each answers CQL and sees the
    others in system.peers. Prints the settings that point the app at the ring.

    Example:

        pulse dev ring up
        eval "$(pulse dev ring up)"
        pulse dev ring up --node node2     # bring back one stopped node
    """
    dev, ring = _dev_settings(), _ring()
    try:
        found = ring.up(dev, echo=_progress, only=node)
    except ring.DevServerError as error:
        raise _fail("ring up", error) from None
    typer.echo(f"export PULSE_CQL__CONTACT_POINTS={found.contact_points}")
    typer.echo(f"export PULSE_CQL__PORT={found.cql_port}")
    typer.echo("export PULSE_CQL__REPLICATION_FACTOR=3")
    _progress("stop it with: pulse dev ring down")


@ring_app.command("down")
def ring_down(
    node: Annotated[
        list[str] | None, typer.Option(help="stop only these nodes (node1, node2, ...)")
    ] = None,
    kill: Annotated[
        bool, typer.Option(help="SIGKILL (a crash) instead of SIGTERM (a drain)")
    ] = False,
) -> None:
    """Stop the ring's nodes by the pids recorded in PULSE_DEV__HOME/ring/run/*.pid.

    Example:

        pulse dev ring down
        pulse dev ring down --node node2 --kill    # crash one node
    """
    import signal

    dev, ring = _dev_settings(), _ring()
    names = node or [each.name for each in ring.ring_nodes(dev)]
    sig = signal.SIGKILL if kill else signal.SIGTERM
    try:
        ring.stop_nodes(dev, names, echo=_progress, sig=sig)
    except ring.DevServerError as error:
        raise _fail("ring down", error) from None


@ring_app.command("status")
def ring_status() -> None:
    """Each node's state (ready, joining, not answering, stopped), pid, memory and log."""
    for server in _ring().status(_dev_settings()):
        pid = f"pid {server.pid}" if server.pid else "-"
        rss = f"RSS {server.rss_kib // 1024} MiB" if server.rss_kib else "-"
        typer.echo(
            f"{server.name:<10} {server.state:<14} {pid:<11} {server.endpoint:<16} "
            f"{rss:<13} log {server.log_file}"
        )
