"""`pulse keys create|list|revoke`: API keys for producers (gRPC), tenants and operators (HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from access.keys import Role, new_key
from kernel.errors import Invalid
from pulse.cli.common import Embedded, console, settings

keys_app = typer.Typer(
    help="API keys. Example: pulse keys create --role tenant --tenant acme --name acme-portal"
)

_ROLES = ", ".join(r.value for r in Role)


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option(help=f"one of: {_ROLES}")],
    tenant: Annotated[
        list[str] | None,
        typer.Option(help="tenant the key reads (tenant) or may send for (producer); repeatable"),
    ] = None,
    name: Annotated[str, typer.Option(help="a label for `pulse keys list`")] = "",
    embedded: Embedded = False,
) -> None:
    """Create a key and print it once: the key alone is the last line (store it now).

    Example: KEY=$(pulse keys create --role producer --name billing-agent | tail -n 1)
    """
    from pulse.bootstrap import key_store

    try:
        chosen = Role(role)
    except ValueError:
        raise Invalid(f"--role: {role!r} is not one of {_ROLES}") from None
    made = new_key(chosen, tenant or (), name, datetime.now(UTC))
    with key_store(settings(embedded)) as store:
        store.add(made.record)
    record = made.record
    scope = ", ".join(sorted(record.tenants)) or "all tenants"
    console.print(
        f"created {record.role} key {record.key_id} ({scope}); it is shown only now, "
        "and only its salted hash is stored:",
        highlight=False,
    )
    print(made.token)  # plain print: no wrapping or markup, so `tail -n 1` gets the key


@keys_app.command("list")
def list_keys(embedded: Embedded = False) -> None:
    """List keys: id, role, tenants, name, created, revoked (never a secret or a hash).

    Example: pulse keys list
    """
    from pulse.bootstrap import key_store

    with key_store(settings(embedded)) as store:
        records = store.all()
    table = Table(title="API keys")
    for column in ("id", "role", "tenants", "name", "created (UTC)", "revoked (UTC)"):
        # Ids and times are copied whole (`pulse keys revoke ID`): never wrapped.
        table.add_column(column, no_wrap=column not in ("tenants", "name"))
    for r in records:
        table.add_row(
            r.key_id,
            r.role.value,
            ", ".join(sorted(r.tenants)) or ("all" if r.role is not Role.TENANT else ""),
            r.name,
            f"{r.created:%Y-%m-%d %H:%M:%S}",
            f"{r.revoked:%Y-%m-%d %H:%M:%S}" if r.revoked else "",
        )
    console.print(table)
    console.print(f"{len(records)} key(s)")


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id, as `pulse keys list` shows it")],
    embedded: Embedded = False,
) -> None:
    """Revoke a key; running servers refuse it within PULSE_AUTH__CACHE_SECONDS (5 s).

    Example: pulse keys revoke 3f2a9c0d1b4e5f60
    """
    from pulse.bootstrap import key_store

    with key_store(settings(embedded)) as store:
        record = store.revoke(key_id, datetime.now(UTC))
    assert record.revoked is not None
    console.print(f"key {record.key_id} revoked at {record.revoked:%Y-%m-%d %H:%M:%S} UTC")
