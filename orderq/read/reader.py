"""`Reader`: every read query over one engine and one cursor secret (thin routes call it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine

from orderq.read import customers, ledger, loans, members, orders, products, works
from orderq.read.cursors import CursorCodec
from orderq.read.keyset import Window
from orderq.read.ledger import LEDGER_DAYS
from orderq.read.orders import REPORT_DAYS
from orderq.read.pages import DEFAULT_LIMIT, Page

if TYPE_CHECKING:
    from worker.settings import WorkerSettings

T = TypeVar("T")


def cursor_secret(settings: WorkerSettings) -> str | None:
    """The settings' cursor secret (ORDERQ_READ_CURSOR_SECRET), if any."""
    secret = getattr(settings, "read_cursor_secret", None)
    return secret.get_secret_value() if secret is not None else None


class Reader:
    """Search, listings and the hot report. Each call uses one pooled connection."""

    def __init__(
        self, engine: Engine, *, cursor_secret: str | None = None, phone_region: str | None = None
    ) -> None:
        self.engine = engine
        self.codec = CursorCodec(cursor_secret)
        self.phone_region = phone_region

    @classmethod
    def from_settings(cls, engine: Engine, settings: WorkerSettings) -> Reader:
        """A reader with the settings' cursor secret and phone region."""
        return cls(
            engine, cursor_secret=cursor_secret(settings), phone_region=settings.phone_region
        )

    def _read(self, query: Callable[[Connection], T]) -> T:
        with self.engine.connect() as connection:
            return query(connection)

    # -- search ---------------------------------------------------------------------------

    def search_works(
        self, query: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page:
        """Works by title or author (full text + typos), best first."""
        return self._read(lambda c: works.search_works(c, self.codec, query, limit, cursor))

    def search_members(
        self, query: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page:
        """Live members by name, e-mail or phone."""
        return self._read(
            lambda c: members.search_members(c, self.codec, query, limit, cursor, self.phone_region)
        )

    def search_customers(
        self, query: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page:
        """Customers by name, e-mail, phone or exact reference."""
        return self._read(
            lambda c: customers.search_customers(
                c, self.codec, query, limit, cursor, self.phone_region
            )
        )

    def search_products(
        self, query: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page:
        """Products by SKU prefix or name."""
        return self._read(lambda c: products.search_products(c, self.codec, query, limit, cursor))

    # -- orders ---------------------------------------------------------------------------

    def order(self, order_number: str) -> dict[str, Any] | None:
        """One order with its lines (and the idempotency key that placed it), or None."""
        return self._read(lambda c: orders.find_order(c, order_number))

    def orders(
        self, status: str | None = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page:
        """Orders in `status` (None: every status), newest first."""
        return self._read(lambda c: orders.orders_in_status(c, self.codec, status, limit, cursor))

    def order_totals(
        self, since: datetime, until: datetime, statuses: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Orders and their value per status (default: every status) created in
        [since, until)."""
        return self._read(lambda c: orders.totals_by_status(c, since, until, statuses))

    # -- loans ----------------------------------------------------------------------------

    def loan(self, loan_id: int) -> dict[str, Any] | None:
        """One loan with its member, copy and work, or None."""
        return self._read(lambda c: loans.find_loan(c, loan_id))

    # -- listings -------------------------------------------------------------------------

    def orders_of_customer(
        self, customer_ref: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page:
        """A customer's orders, newest first."""
        return self._read(
            lambda c: orders.orders_of_customer(c, self.codec, customer_ref, limit, cursor)
        )

    def member_loans(
        self,
        member_number: str,
        state: str = "active",
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """A member's loans, newest first: `active` or `history`."""
        return self._read(
            lambda c: members.member_loans(c, self.codec, member_number, state, limit, cursor)
        )

    def product_movements(
        self, sku: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page:
        """A product's stock movements, newest first."""
        return self._read(lambda c: products.product_movements(c, self.codec, sku, limit, cursor))

    def ledger(
        self,
        status: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        *,
        days: float = LEDGER_DAYS,
    ) -> Page:
        """Decided commands by outcome and time, newest first: in [since, until), `until`
        defaulting to now and `since` to `days` before it (kept by the cursor)."""
        window = Window(since, until, days)
        return self._read(
            lambda c: ledger.ledger_entries(c, self.codec, status, window, limit, cursor)
        )

    # -- reports --------------------------------------------------------------------------

    def orders_over_total(
        self,
        status: str,
        since: datetime | None,
        until: datetime | None,
        min_total_cents: int,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        *,
        days: float = REPORT_DAYS,
    ) -> Page:
        """The hot report: orders in a status and date range whose items total more than
        a threshold, newest first (the window as for `ledger`, default a week)."""
        window = Window(since, until, days)
        return self._read(
            lambda c: orders.orders_over_total(
                c, self.codec, status, window, min_total_cents, limit, cursor
            )
        )
