"""The composition root: chooses and wires the adapters for the configured backend."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalog.billing import BillingApp
from catalog.files import read_catalog
from catalog.products import Product, ProductCatalog
from ledger.ports import LedgerStore, PulseLog
from projections.ports import UsageStore
from pulse.settings import Backend, Settings

SAMPLE_CATALOG = Path(__file__).parent / "sample" / "catalog.yaml"


@dataclass
class Parts:
    """The adapters one process uses; close() releases them in reverse order."""

    log: PulseLog
    ledger: LedgerStore
    usage: UsageStore
    catalog: ProductCatalog
    billing: BillingApp

    def close(self) -> None:
        self.usage.close()
        self.ledger.close()
        self.log.close()


def load_catalog(settings: Settings, billing: BillingApp) -> ProductCatalog:
    """Billing units for the ingestor's unit check and the hourly projection.

    The event-sourced catalog (`pulse catalog apply`) when it holds products, else the catalog
    file (PULSE_CATALOG_FILE, by default the packaged sample). Read once per process: a
    process started before a catalog change sees it after a restart, and `pulse rebuild`
    re-derives hourly usage with the new units.
    """
    terms = list(billing.products().values())
    if not terms:
        terms = read_catalog((settings.catalog_file or SAMPLE_CATALOG).read_text())
    return ProductCatalog(
        Product(p.sku, p.name, p.category, p.billing_unit, p.currency) for p in terms
    )


def billing_app(settings: Settings) -> BillingApp:
    """The eventsourcing application on the backend's persistence module."""
    match settings.backend:
        case Backend.EMBEDDED:
            settings.embedded.path.mkdir(parents=True, exist_ok=True)
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(settings.embedded.path / "billing.sqlite"),
            }
        case Backend.SERVERS:
            env = {
                "PERSISTENCE_MODULE": "eventstore_cql",
                "CQL_CONTACT_POINTS": settings.cql.contact_points,
                "CQL_PORT": str(settings.cql.port),
                "CQL_KEYSPACE": settings.cql.keyspace,
                "CQL_REPLICATION_FACTOR": str(settings.cql.replication_factor),
            }
    return BillingApp(env=env)


def build(settings: Settings) -> Parts:
    """Adapters for `settings.backend`; the only place that knows concrete classes."""
    billing = billing_app(settings)
    catalog = load_catalog(settings, billing)
    match settings.backend:
        case Backend.EMBEDDED:
            from ledger.sqlite import SQLitePulseLog
            from ledger.sqlite_store import SQLiteLedgerStore
            from projections.sqlite import SQLiteUsageStore

            root = settings.embedded.path
            return Parts(
                log=SQLitePulseLog(root / "log.sqlite", settings.embedded.partitions),
                ledger=SQLiteLedgerStore(root / "ledger.sqlite"),
                usage=SQLiteUsageStore(root / "usage.sqlite"),
                catalog=catalog,
                billing=billing,
            )
        case Backend.SERVERS:
            from ledger.kafka import KafkaPulseLog
            from ledger.scylla import ScyllaLedgerStore, connect
            from projections.scylla import ScyllaUsageStore

            session = connect(settings.cql)
            return Parts(
                log=KafkaPulseLog(
                    settings.kafka, delivery_timeout=settings.ingest.delivery_timeout_seconds
                ),
                ledger=ScyllaLedgerStore(session, settings.cql.keyspace),
                usage=ScyllaUsageStore(session, settings.cql.keyspace),
                catalog=catalog,
                billing=billing,
            )
