"""The composition root: chooses and wires the adapters for the configured backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from eventsourcing.utils import Environment

from access.ports import KeyStore
from catalog.billing import BillingApp
from catalog.files import read_catalog
from catalog.products import MeteredProduct, ProductCatalog, catalog_version
from ledger.ports import LedgerStore, LogHistory, PulseLog
from projections.ports import UsageStore
from pulse.settings import Backend, Settings

if TYPE_CHECKING:
    from projections.invoices import Invoicing
    from projections.reconcile import Reconciliation
    from projections.replay import Replay
    from storage.cql import CqlConnection

SAMPLE_CATALOG = Path(__file__).parent / "sample" / "catalog.yaml"


@dataclass
class Parts:
    """The adapters one process uses; close() releases them in reverse order."""

    log: PulseLog
    ledger: LedgerStore
    usage: UsageStore
    catalog: ProductCatalog
    billing: BillingApp
    history: LogHistory
    keys: KeyStore

    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        self.history.close()
        self.usage.close()
        self.ledger.close()
        self.log.close()
        self.billing.close()
        self.keys.close()
        for close in reversed(self.closers):  # shared connections last
            close()


def load_catalog(settings: Settings, billing: BillingApp) -> ProductCatalog:
    """Billing units for the ingestor's unit check and the hourly projection.

    The event-sourced catalog (`pulse catalog apply`) when it holds products, else the catalog
    file (PULSE_CATALOG_FILE, by default the packaged sample). Read once per process: a
    process started before a catalog change sees it after a restart, and `pulse rebuild`
    re-derives hourly usage with the new units.

    The catalog's version (`catalog.products.catalog_version`) orders re-derivations of the
    same ledger events: after an apply, a rebuild outranks what processes still on the
    older catalog derive. Catalog files are not ordered among themselves (epoch 0).
    """
    terms, epoch = billing.metering_terms()
    if not terms:
        terms = read_catalog((settings.catalog_file or SAMPLE_CATALOG).read_text())
    products = [
        MeteredProduct(p.sku, p.name, p.category, p.billing_unit, p.currency) for p in terms
    ]
    return ProductCatalog(products, catalog_version(epoch, products))


def billing_app(settings: Settings, connection: CqlConnection | None = None) -> BillingApp:
    """The eventsourcing application on the backend's persistence module.

    On servers it shares `connection` when given (one session per process), else the event
    store opens its own (commands that need only the billing application)."""
    match settings.backend:
        case Backend.EMBEDDED:
            settings.embedded.path.mkdir(parents=True, exist_ok=True)
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(settings.embedded.path / "billing.sqlite"),
            }
            return BillingApp(env=env)
        case Backend.SERVERS:
            from eventstore_cql import ScyllaFactory

            env = {
                "PERSISTENCE_MODULE": "eventstore_cql",
                "CQL_CONTACT_POINTS": settings.cql.contact_points,
                "CQL_PORT": str(settings.cql.port),
                "CQL_KEYSPACE": settings.cql.keyspace,
                "CQL_REPLICATION_FACTOR": str(settings.cql.replication_factor),
            }
            if settings.cql.username and settings.cql.password:
                env["CQL_USERNAME"] = settings.cql.username
                env["CQL_PASSWORD"] = settings.cql.password.get_secret_value()
            factory = None
            if connection is not None:
                factory = ScyllaFactory(Environment(BillingApp.name, env), connection)
            return BillingApp(env=env, factory=factory)


def build(settings: Settings) -> Parts:
    """Adapters for `settings.backend`; the only place that knows concrete classes."""
    match settings.backend:
        case Backend.EMBEDDED:
            from access.sqlite import SQLiteKeyStore
            from ledger.sqlite import SQLitePulseLog
            from ledger.sqlite_history import SQLiteLogHistory
            from ledger.sqlite_store import SQLiteLedgerStore
            from projections.sqlite import SQLiteUsageStore

            billing = billing_app(settings)
            root = settings.embedded.path
            return Parts(
                log=SQLitePulseLog(root / "log.sqlite", settings.embedded.partitions),
                ledger=SQLiteLedgerStore(root / "ledger.sqlite"),
                usage=SQLiteUsageStore(root / "usage.sqlite"),
                catalog=load_catalog(settings, billing),
                billing=billing,
                history=SQLiteLogHistory(root / "log.sqlite", settings.embedded.partitions),
                keys=SQLiteKeyStore(root / "keys.sqlite"),
            )
        case Backend.SERVERS:
            from access.scylla import ScyllaKeyStore
            from ledger.kafka import KafkaPulseLog
            from ledger.kafka_history import KafkaLogHistory
            from ledger.scylla import ScyllaLedgerStore
            from projections.scylla import ScyllaUsageStore
            from storage.cql import connect

            # One session for ledger, usage and the event store of this process.
            connection = connect(settings.cql.config())
            try:
                billing = billing_app(settings, connection)
                session, keyspace = connection.session, settings.cql.keyspace
                return Parts(
                    log=KafkaPulseLog(
                        settings.kafka.config(),
                        delivery_timeout=settings.ingest.delivery_timeout_seconds,
                    ),
                    ledger=ScyllaLedgerStore(session, keyspace),
                    usage=ScyllaUsageStore(session, keyspace),
                    catalog=load_catalog(settings, billing),
                    billing=billing,
                    history=KafkaLogHistory(settings.kafka.config()),
                    keys=ScyllaKeyStore(session, keyspace),
                    closers=[connection.close],
                )
            except BaseException:
                connection.close()
                raise


@contextmanager
def key_store(settings: Settings) -> Iterator[KeyStore]:
    """The backend's key store alone (for `pulse keys`), closed with its connection on exit."""
    store: KeyStore
    match settings.backend:
        case Backend.EMBEDDED:
            from access.sqlite import SQLiteKeyStore

            store = SQLiteKeyStore(settings.embedded.path / "keys.sqlite")
            try:
                yield store
            finally:
                store.close()
        case Backend.SERVERS:
            from access.scylla import ScyllaKeyStore
            from storage.cql import connect

            connection = connect(settings.cql.config())
            try:
                yield ScyllaKeyStore(connection.session, settings.cql.keyspace)
            finally:
                connection.close()


def invoicing(settings: Settings, parts: Parts) -> Invoicing:
    """The invoicing use cases on these parts, pinned by the writer group's commits."""
    from projections.invoices import Invoicing, writer_commits

    return Invoicing(
        parts.billing,
        parts.ledger,
        parts.usage,
        writer_commits(parts.log, settings.kafka.writer_group),
    )


def replay(settings: Settings, parts: Parts) -> Replay:
    """Replay (and dead-letter resubmission) through the writer's own path on these parts."""
    from ledger.writer import LedgerAppender
    from projections.replay import Replay

    return Replay(
        parts.history,
        LedgerAppender(parts.log, parts.ledger),
        parts.ledger,
        parts.usage,
        invoicing(settings, parts),
        parts.catalog,
    )


def reconciliation(settings: Settings, parts: Parts) -> Reconciliation:
    from projections.reconcile import Reconciliation

    return Reconciliation(
        parts.history,
        parts.log,
        parts.ledger,
        parts.usage,
        invoicing(settings, parts),
        parts.catalog.billing_unit,
    )
