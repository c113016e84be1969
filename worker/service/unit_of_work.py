"""The unit of work: one session, one transaction, the only place that commits.

Leaving the `with` block without `commit()` rolls everything back, so an exception
anywhere in a handler leaves no trace in the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Self

from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from worker.adapters.loan_repositories import (
    CopyRepository,
    LibraryClock,
    LoanRepository,
    MemberRepository,
    ReservationRepository,
    WorkRepository,
)
from worker.adapters.repositories import LedgerRepository, OrderRepository, ProductRepository
from worker.adapters.sql import Sql


class UnitOfWork:
    """One PostgreSQL transaction with the repositories that work inside it."""

    ledger: LedgerRepository
    products: ProductRepository
    orders: OrderRepository
    clock: LibraryClock
    members: MemberRepository
    works: WorkRepository
    copies: CopyRepository
    loans: LoanRepository
    reservations: ReservationRepository

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        self.sql = Sql(self.session)
        self.ledger = LedgerRepository(self.sql)
        self.products = ProductRepository(self.sql)
        self.orders = OrderRepository(self.sql)
        self.clock = LibraryClock(self.session)
        self.members = MemberRepository(self.session)
        self.works = WorkRepository(self.session)
        self.copies = CopyRepository(self.session)
        self.loans = LoanRepository(self.session)
        self.reservations = ReservationRepository(self.session)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.session.rollback()  # no-op after commit
        finally:
            self.session.close()

    @contextmanager
    def savepoint(self) -> Iterator[SessionTransaction]:
        """A nested transaction: a business rejection undoes only the handler's work."""
        nested = self.session.begin_nested()
        # Emit the SAVEPOINT now: the hand-written SQL does not pass through the session,
        # which would otherwise only send it with its own next statement.
        self.session.connection()
        with nested:
            yield nested

    def batched(self) -> AbstractContextManager[None]:
        """Writes inside go to the server in one round trip (errors surface at the end)."""
        return self.sql.pipeline()

    def flush(self) -> None:
        """Send pending changes (server-generated values become readable)."""
        self.session.flush()

    def commit(self) -> None:
        self.session.commit()
