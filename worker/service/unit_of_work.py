"""The unit of work: one connection, one transaction, the only place that commits.

Leaving the `with` block without `commit()` rolls everything back, so an exception
anywhere in a handler leaves no trace in the database.

The ledger, orders and stock use hand-written SQL on the connection; the loan
repositories use an ORM session, created only when a loan command first needs one and
joined to the same connection and transaction. Order commands thus pay nothing for
the ORM.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cached_property
from typing import Any, Self

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from producers.command_log import CommandLog
from worker.adapters.loan_repositories import (
    CopyRepository,
    LibraryClock,
    LoanRepository,
    MemberRepository,
    ReservationRepository,
    WorkRepository,
)
from worker.adapters.repositories import (
    CustomerRepository,
    HeldProducts,
    OrderRepository,
    ProductRepository,
)
from worker.adapters.sql import Sql

_SAVEPOINT = "SAVEPOINT command"


class UnitOfWork:
    """One PostgreSQL transaction with the repositories that work inside it (use once)."""

    connection: Connection

    def __init__(
        self, session_factory: sessionmaker[Session], joined: UnitOfWork | None = None
    ) -> None:
        self._session_factory = session_factory
        self._engine: Engine = session_factory.kw["bind"]
        self._joined = joined
        #: in a batch: the product and stock rows it locked up front (lock_up_front)
        self.held_products: HeldProducts | None = None

    def joined(self) -> UnitOfWork:
        """A unit for one command of a batch: this unit's connection, transaction and
        held rows, its own repositories and ORM session; it never commits (the batch
        does)."""
        return UnitOfWork(self._session_factory, joined=self)

    def __enter__(self) -> Self:
        if self._joined is not None:
            self.connection = self._joined.connection
            self.sql = self._joined.sql
        else:
            self.connection = self._engine.connect()
            self.connection.begin()
            self.sql = Sql(self.connection)
        held = self._joined.held_products if self._joined is not None else None
        self.ledger = CommandLog(self.sql.connection)
        self.products = ProductRepository(self.sql, held)
        self.orders = OrderRepository(self.sql)
        self.customers = CustomerRepository(self.sql)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._joined is not None:
            if exc_info[0] is None:
                self.products.keep()
            if "session" in self.__dict__:
                if exc_info[0] is None:
                    self.session.commit()  # releases its savepoint; the batch commits
                self.session.close()  # rolls back its savepoint if still open
            return
        try:
            if "session" in self.__dict__:
                self.session.close()
            self.connection.rollback()  # no-op after commit
        finally:
            self.connection.close()

    @cached_property
    def session(self) -> Session:
        """The ORM session for the loan repositories, in this unit's transaction."""
        # In a batch the session works in a savepoint of its own, so an error in its
        # flush undoes only its command's changes, never the batch's transaction.
        mode = "create_savepoint" if self._joined is not None else "rollback_only"
        self.sql.send_deferred()  # the command's own SAVEPOINT goes first
        return self._session_factory(bind=self.connection, join_transaction_mode=mode)

    @cached_property
    def clock(self) -> LibraryClock:
        return LibraryClock(self.session)

    @cached_property
    def members(self) -> MemberRepository:
        return MemberRepository(self.session)

    @cached_property
    def works(self) -> WorkRepository:
        return WorkRepository(self.session)

    @cached_property
    def copies(self) -> CopyRepository:
        return CopyRepository(self.session)

    @cached_property
    def loans(self) -> LoanRepository:
        return LoanRepository(self.session)

    @cached_property
    def reservations(self) -> ReservationRepository:
        return ReservationRepository(self.session)

    def batched(self) -> AbstractContextManager[None]:
        """Writes inside go to the server in one round trip (errors surface at the end)."""
        return self.sql.pipeline()

    def flush(self) -> None:
        """Send the ORM's pending changes (server-generated values become readable)."""
        if "session" in self.__dict__:
            self.session.flush()

    def savepoint(self) -> None:
        """Mark the point `rollback_to_savepoint` returns to (one command of a batch);
        the SAVEPOINT goes to the server with the command's first statement."""
        self.sql.defer(_SAVEPOINT)

    def rollback_to_savepoint(self) -> None:
        """Undo everything since the last `savepoint`, keeping what came before."""
        if not self.sql.cancel_deferred(_SAVEPOINT):  # else nothing was sent since
            self.sql.execute("ROLLBACK TO SAVEPOINT command")

    def commit(self) -> None:
        if self._joined is not None:
            raise RuntimeError("a command of a batch does not commit; its batch does")
        self.flush()
        self.connection.commit()
