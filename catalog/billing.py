"""The billing Application (eventsourcing): applies catalog/contract files as recorded events
and keeps finalized invoices; history is never rewritten."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
)
from eventsourcing.utils import Environment

from catalog.aggregates import (
    CATALOG_INDEX_ID,
    CONTRACT_INDEX_ID,
    Contract,
    Index,
    Invoice,
    Product,
    contract_id,
    index_id,
    invoice_id,
    product_id,
)
from catalog.invoice import CorrectionNote
from catalog.terms import ContractTerms, ProductTerms
from catalog.terms_codec import contract_version_doc, plan_version_doc
from kernel.errors import Conflict, LedgerError, Unavailable


@contextmanager
def translated(what: str) -> Iterator[None]:
    """The event store's errors become the kernel's categories here, at the app's boundary."""
    try:
        yield
    except IntegrityError as exc:  # another writer recorded this aggregate version first
        raise Conflict(f"{what}: already recorded by another writer ({exc})") from exc
    except (OperationalError, InterfaceError) as exc:  # transient: retrying is safe
        raise Unavailable(f"{what}: event store unavailable: {exc}") from exc
    except PersistenceError as exc:
        raise LedgerError(f"{what}: event store error: {exc}") from exc


T = TypeVar("T")
_CACHED_READS = 10_000  # tenants' contracts and the catalog kept per log head, at most
_KEEP_ATTEMPTS = 5
_NOT_KEPT = object()


class BillingApp(Application[UUID]):
    """Catalog, contracts and invoices. Reads of the catalog and of contracts are kept while
    the application's log stays as it was (`_mark`, one read): a read is kept only when the
    marks read before and after it are equal and settled, that is no transaction wrote or
    undid events in between, and it is served while the mark stays equal."""

    name = "billing"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        factory: InfrastructureFactory[Any] | None = None,
    ) -> None:
        """`factory`: persistence built by the caller (e.g. on a session shared with the rest of
        the process); without one, PERSISTENCE_MODULE in `env` chooses, as the library does."""
        self._given_factory = factory
        self._reads_lock = threading.Lock()
        self._reads_head: object = None
        self._reads: dict[tuple[str, str], Any] = {}
        with translated("opening the billing event store"):
            super().__init__(env=env)

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        return self._given_factory or super().construct_factory(env)

    # ----- catalog -----------------------------------------------------------------------

    def apply_catalog(self, products: Sequence[ProductTerms]) -> list[str]:
        """Records the difference between the catalog and `products`; returns what changed.

        Products absent from the file are left as they are (a catalog never forgets a SKU that
        may have been billed). All changes are saved in one atomic write.
        """
        self._check_one_currency(products)
        index = self._index(CATALOG_INDEX_ID, "catalog")
        changed: list[Aggregate] = []
        notes: list[str] = []
        for terms in products:
            product: Product | None = self._get(product_id(terms.sku), Product)
            if product is None:
                product = Product(
                    terms.sku, terms.name, terms.category, terms.billing_unit, terms.currency
                )
                index.add(terms.sku)
                notes.append(f"product {terms.sku}: registered")
            elif (product.name, product.category, product.billing_unit, product.currency) != (
                terms.name,
                terms.category,
                terms.billing_unit,
                terms.currency,
            ):
                product.change_details(
                    terms.name, terms.category, terms.billing_unit, terms.currency
                )
                notes.append(f"product {terms.sku}: details changed")
            for version in terms.plans:
                doc = plan_version_doc(version)
                if product.plans.get(doc["effective_from"]) != doc:
                    product.schedule_plan(doc)
                    notes.append(f"product {terms.sku}: plan from {version.effective_from}")
            if product.pending_events:
                changed.append(product)
        if index.pending_events:
            changed.append(index)
        if changed:
            self.save(*changed)
        return notes

    def _check_one_currency(self, products: Sequence[ProductTerms]) -> None:
        """Refuses a catalog that would price in two currencies once applied: an invoice has
        one currency, so every draft of every tenant would fail from then on."""
        after = {sku: p.currency for sku, p in self._products().items()}
        after.update({p.sku: p.currency for p in products})
        by_currency: dict[str, list[str]] = {}
        for sku, currency in sorted(after.items()):
            by_currency.setdefault(currency, []).append(sku)
        if len(by_currency) > 1:
            mix = "; ".join(f"{c}: {_some(skus)}" for c, skus in sorted(by_currency.items()))
            raise Conflict(f"one catalog, one currency: applied, it would mix {mix}")

    def products(self) -> dict[str, ProductTerms]:
        return {sku: terms for sku, (terms, _v) in self.versioned_products().items()}

    def product_versions(self) -> dict[str, int]:
        return {sku: p.version for sku, p in self._products().items()}

    def versioned_products(self) -> dict[str, tuple[ProductTerms, int]]:
        """Each product's terms with the aggregate version they are at, from one read."""
        return {sku: (terms, v) for sku, (terms, v, _units) in self._catalog().items()}

    def metering_terms(self) -> tuple[list[ProductTerms], int]:
        """The products' terms and the catalog's metering epoch, from one read: how many
        events so far set a product's billing unit (registrations and detail changes). Each
        such event raises it, so a later catalog has a greater epoch
        (`catalog.products.catalog_version`)."""
        found = self._catalog().values()
        return [terms for terms, _v, _u in found], sum(units for _t, _v, units in found)

    def _catalog(self) -> dict[str, tuple[ProductTerms, int, int]]:
        def read() -> dict[str, tuple[ProductTerms, int, int]]:
            return {sku: (p.terms(), p.version, p.units_set) for sku, p in self._products().items()}

        return self._kept(("catalog", ""), read)

    def products_at(self, versions: dict[str, int]) -> dict[str, ProductTerms]:
        """The catalog as it was at recorded aggregate versions (for re-deriving invoices)."""
        out = {}
        for sku, version in versions.items():
            product = self._get(product_id(sku), Product, version=version)
            assert product is not None, f"product {sku} has no version {version}"
            out[sku] = product.terms()
        return out

    def _products(self) -> dict[str, Product]:
        index = self._get(CATALOG_INDEX_ID, Index)
        out = {}
        for sku in index.keys if index else []:
            product = self._get(product_id(sku), Product)
            if product is not None:
                out[sku] = product
        return out

    # ----- contracts ---------------------------------------------------------------------

    def apply_contracts(self, contracts: Sequence[ContractTerms]) -> list[str]:
        """Records new or changed amendments of each contract; one atomic write."""
        index = self._index(CONTRACT_INDEX_ID, "contracts")
        changed: list[Aggregate] = []
        notes: list[str] = []
        for terms in contracts:
            contract: Contract | None = self._get(contract_id(terms.tenant_id), Contract)
            if contract is None:
                contract = Contract(terms.tenant_id)
                index.add(terms.tenant_id)
                notes.append(f"contract {terms.tenant_id}: opened")
            for version in terms.versions:
                doc = contract_version_doc(version)
                if contract.amendments.get(doc["effective_from"]) != doc:
                    contract.amend(doc)
                    notes.append(
                        f"contract {terms.tenant_id}: amendment from {version.effective_from}"
                    )
            if contract.pending_events:
                changed.append(contract)
        if index.pending_events:
            changed.append(index)
        if changed:
            self.save(*changed)
        return notes

    def contract(self, tenant_id: str) -> tuple[ContractTerms, int] | None:
        """The tenant's contract terms and the aggregate version they come from."""

        def read() -> tuple[ContractTerms, int] | None:
            contract = self._get(contract_id(tenant_id), Contract)
            return None if contract is None else (contract.terms(), contract.version)

        return self._kept(("contract", tenant_id), read)

    def contract_at(self, tenant_id: str, version: int) -> ContractTerms:
        contract: Contract | None = self._get(contract_id(tenant_id), Contract, version=version)
        assert contract is not None, f"contract of {tenant_id} has no version {version}"
        return contract.terms()

    def terms_of(
        self, tenant_id: str
    ) -> tuple[dict[str, ProductTerms], tuple[ContractTerms, int] | None]:
        """`products()` and `contract(tenant_id)`, for one read of the log head when both are
        kept under it (a live draft's terms)."""
        head = self._mark()
        with self._reads_lock:
            if head is not None and head == self._reads_head:
                catalog = self._reads.get(("catalog", ""))
                contract = self._reads.get(("contract", tenant_id), _NOT_KEPT)
                if catalog is not None and contract is not _NOT_KEPT:
                    return {sku: terms for sku, (terms, _v, _u) in catalog.items()}, contract
        return self.products(), self.contract(tenant_id)

    def tenants_with_contracts(self) -> list[str]:
        index = self._get(CONTRACT_INDEX_ID, Index)
        return list(index.keys) if index else []

    # ----- invoices ----------------------------------------------------------------------

    def invoice(self, tenant_id: str, period: str) -> Invoice | None:
        found: Invoice | None = self._get(invoice_id(tenant_id, period), Invoice)
        return found

    def invoice_periods(self, tenant_id: str) -> list[str]:
        """Periods of the tenant's finalized invoices, in the order they were finalized.

        Invoices finalized before this index existed are not in it (Invoicing.summaries
        finds those from the months with usage)."""
        index = self._get(_invoice_index_id(tenant_id), Index)
        return list(index.keys) if index else []

    def record_finalized(
        self, tenant_id: str, period: str, document: str, sha256: str, pins: dict[str, Any]
    ) -> Invoice:
        # The id is derived from (tenant, period): a second finalize of the same period fails
        # on the recorder's version check instead of creating a second invoice. The invoice
        # and the tenant's invoice index are saved in one atomic write; a refusal caused only
        # by the index (another period of the tenant finalized meanwhile) is tried again.
        for _attempt in range(_INDEX_ATTEMPTS):
            invoice = Invoice(tenant_id, period, document, sha256, pins)
            kind = f"invoices:{tenant_id}"
            index = self._index(_invoice_index_id(tenant_id), kind)
            index.add(period)
            try:
                self.save(invoice, index)
            except Conflict:
                if self.invoice(tenant_id, period) is not None:
                    raise
                continue
            return invoice
        raise Unavailable(
            f"invoice of {tenant_id} for {period}: other periods kept being finalized first "
            f"({_INDEX_ATTEMPTS} attempts); try again"
        )

    def record_correction(self, invoice: Invoice, note: CorrectionNote) -> None:
        """Records `note` on `invoice` as of the version it was read at: if another note was
        recorded since, the event store refuses this one (IntegrityError)."""
        invoice.correct(**note.payload())
        self.save(invoice)

    # ----- helpers -----------------------------------------------------------------------

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        with translated("recording billing events"):
            return super().save(*objs, **kwargs)

    def _kept(self, key: tuple[str, str], read: Callable[[], T]) -> T:
        """`read()`, or what it returned before if nothing was recorded since (see the class
        docstring). A read is kept only when the head did not move while it ran, so what is
        kept is one state of the store, not pieces of two; if the head keeps moving, the
        last read is returned unkept. Values kept must not be changed by callers."""
        value: T
        for _attempt in range(_KEEP_ATTEMPTS):
            head = self._mark()
            if head is None:  # a write in progress: read what the store holds, keep nothing
                return read()
            with self._reads_lock:
                if head != self._reads_head or len(self._reads) >= _CACHED_READS:
                    self._reads, self._reads_head = {}, head
                elif key in self._reads:
                    value = self._reads[key]
                    return value
            value = read()
            if self._mark() == head:
                with self._reads_lock:
                    if self._reads_head == head:
                        self._reads[key] = value
                return value
        return value

    def _mark(self) -> object:
        """What changes whenever events are recorded (or written and undone); None while a
        write is in progress. On CQL, the log head's lock epoch and last id
        (`eventstore_cql` writes rows before it commits the head, and undoes them if the
        transaction fails); elsewhere (SQLite: atomic transactions), the last notification
        id."""
        with translated("reading the billing log head"):
            write_mark = getattr(self.recorder, "write_mark", None)
            if write_mark is not None:
                mark: object = write_mark()
                return mark
            return ("notification", self.recorder.max_notification_id())

    def _index(self, key: UUID, kind: str) -> Index:
        index: Index | None = self._get(key, Index)
        if index is None:
            index = Index(kind)
            assert index.id == key
        return index

    def _get(self, key: UUID, kind: type[Any], version: int | None = None) -> Any:
        try:
            with translated(f"reading aggregate {key}"):
                found: Any = self.repository.get(key, version=version)
        except AggregateNotFoundError:
            return None
        assert isinstance(found, kind), f"{key} is a {type(found).__name__}, not {kind.__name__}"
        return found


_INDEX_ATTEMPTS = 10


def _invoice_index_id(tenant_id: str) -> UUID:
    return index_id(f"invoices:{tenant_id}")


def _some(names: list[str], shown: int = 5) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")
