"""Repositories for library loans: the queries the loan handlers run.

Lock order, the same in every handler so two commands never wait on each other in a
circle: member → work → copy → reservation → loan. A handler may skip a level but
never goes back up. Members and works are locked `FOR NO KEY UPDATE`: inserting a
reservation or loan takes a key-share lock on the member and work it references (the
foreign key check), which `FOR UPDATE` would block. Copies are locked `FOR UPDATE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from worker.adapters import tables
from worker.domain.loans import (
    OPEN_RESERVATION_STATUSES,
    Copy,
    CopyStatus,
    Loan,
    Member,
    Reservation,
    ReservationStatus,
    Work,
)

_members, _works, _copies = tables.members, tables.works, tables.copies
_loans, _reservations = tables.loans, tables.reservations


# -- the statements whose plans tests/integration/test_loans.py checks with EXPLAIN ---------


def member_active_loans_query(member_id: int) -> Select:
    """How many loans a member has open (uses ix_loans_member_id_active)."""
    return select(func.count()).where(
        _loans.c.member_id == member_id, _loans.c.returned_at.is_(None)
    )


def copy_active_loan_query(copy_id: int) -> Select:
    """The copy's active loan, if any (uses uq_loans_copy_id_active)."""
    return select(Loan).where(_loans.c.copy_id == copy_id, _loans.c.returned_at.is_(None))


class LibraryClock:
    """The database's transaction time: one clock for every worker and for SQL."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def now(self) -> datetime:
        return self.session.execute(select(func.now())).scalar_one()


class MemberRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def ensure(
        self,
        member_number: str,
        name: str,
        loan_limit: int,
        status: str,
        contacts: dict[str, str | None] | None = None,
    ) -> tuple[Member, bool]:
        """The live member with this number, inserted if there was none; and whether it was.
        `contacts` (email, phone, phone_digits) go into a new row.

        Two concurrent registrations of one number are safe: the second waits on the
        partial unique index, then does nothing.
        """
        inserted = self.session.execute(
            pg_insert(_members)
            .values(
                member_number=member_number,
                name=name,
                loan_limit=loan_limit,
                status=status,
                **(contacts or {}),
            )
            .on_conflict_do_nothing(
                index_elements=["member_number"], index_where=_members.c.deleted_at.is_(None)
            )
            .returning(_members.c.id)
        ).scalar()
        member = self.get(member_number)
        assert member is not None, "inserted or kept by ON CONFLICT just now"
        return member, inserted is not None

    def get(self, member_number: str) -> Member | None:
        """The live member with this number (not locked: versioned updates only)."""
        return self.session.scalars(self._live(member_number)).one_or_none()

    def lock(self, member_number: str) -> Member | None:
        """The live member, row locked so one member's checkouts run one at a time."""
        query = self._live(member_number).with_for_update(key_share=True)
        return self.session.scalars(query).one_or_none()

    def number_of(self, member_id: int) -> str:
        return self.session.execute(
            select(_members.c.member_number).where(_members.c.id == member_id)
        ).scalar_one()

    @staticmethod
    def _live(member_number: str) -> Select:
        return select(Member).where(
            _members.c.member_number == member_number, _members.c.deleted_at.is_(None)
        )


class WorkRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def ensure(self, work_code: str, title: str, authors: Sequence[str]) -> tuple[Work, bool]:
        """The work with this code, inserted if there was none; and whether it was."""
        inserted = self.session.execute(
            pg_insert(_works)
            .values(work_code=work_code, title=title, authors=list(authors))
            .on_conflict_do_nothing(index_elements=["work_code"])
            .returning(_works.c.id)
        ).scalar()
        work = self.get(work_code)
        assert work is not None, "inserted or kept by ON CONFLICT just now"
        return work, inserted is not None

    def get(self, work_code: str) -> Work | None:
        return self.session.scalars(
            select(Work).where(_works.c.work_code == work_code)
        ).one_or_none()

    def lock(self, work_code: str) -> Work | None:
        """The work, row locked: its reservation queue changes one command at a time."""
        query = select(Work).where(_works.c.work_code == work_code).with_for_update(key_share=True)
        return self.session.scalars(query).one_or_none()

    def lock_by_id(self, work_id: int) -> Work:
        query = select(Work).where(_works.c.id == work_id).with_for_update(key_share=True)
        return self.session.scalars(query).one()


class CopyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert(self, work_id: int, barcode: str) -> Copy | None:
        """A new available copy, or None if the barcode is taken (even by a concurrent,
        still uncommitted insert: the unique index makes this one wait for it)."""
        copy_id = self.session.execute(
            pg_insert(_copies)
            .values(work_id=work_id, barcode=barcode, status=CopyStatus.AVAILABLE.value)
            .on_conflict_do_nothing(index_elements=["barcode"])
            .returning(_copies.c.id)
        ).scalar()
        return None if copy_id is None else self.session.get(Copy, copy_id)

    def work_id_of(self, barcode: str) -> int | None:
        """The copy's work (never changes, so it is read without a lock)."""
        return self.session.execute(
            select(_copies.c.work_id).where(_copies.c.barcode == barcode)
        ).scalar()

    def get(self, barcode: str) -> Copy | None:
        return self.session.scalars(select(Copy).where(_copies.c.barcode == barcode)).one_or_none()

    def lock(self, barcode: str) -> Copy | None:
        """The copy, locked `FOR UPDATE`: checkouts and returns of it serialize here."""
        query = (
            select(Copy)
            .where(_copies.c.barcode == barcode)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self.session.scalars(query).one_or_none()

    def lock_by_id(self, copy_id: int) -> Copy:
        query = (
            select(Copy)
            .where(_copies.c.id == copy_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self.session.scalars(query).one()

    def barcode_of(self, copy_id: int) -> str:
        return self.session.execute(
            select(_copies.c.barcode).where(_copies.c.id == copy_id)
        ).scalar_one()

    def lock_available(self, work_id: int) -> Copy | None:
        """One available, live copy of the work, locked (lowest id first)."""
        query = (
            select(Copy)
            .where(
                _copies.c.work_id == work_id,
                _copies.c.status == CopyStatus.AVAILABLE.value,
                _copies.c.deleted_at.is_(None),
            )
            .order_by(_copies.c.id)
            .limit(1)
            .with_for_update()
        )
        return self.session.scalars(query).first()


class LoanRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, loan: Loan) -> None:
        self.session.add(loan)

    def count_active(self, member_id: int) -> int:
        return self.session.execute(member_active_loans_query(member_id)).scalar_one()

    def active_for_copy(self, copy_id: int) -> Loan | None:
        """The copy's active loan, read without a lock: its `version` guards the update."""
        return self.session.scalars(copy_active_loan_query(copy_id)).one_or_none()

    def get(self, loan_id: int) -> Loan | None:
        """A loan by id, read without a lock: its `version` guards the update."""
        return self.session.get(Loan, loan_id)

    def by_idempotency_key(self, key: str) -> Loan | None:
        """The loan the checkout with this key created (uq_loans_idempotency_key)."""
        return self.session.scalars(
            select(Loan).where(_loans.c.idempotency_key == key)
        ).one_or_none()


class ReservationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, reservation: Reservation) -> None:
        self.session.add(reservation)

    def open_for(self, work_id: int, member_id: int, *, lock: bool = False) -> Reservation | None:
        """The member's queued or ready reservation of the work."""
        query = select(Reservation).where(
            _reservations.c.work_id == work_id,
            _reservations.c.member_id == member_id,
            _reservations.c.status.in_([s.value for s in OPEN_RESERVATION_STATUSES]),
        )
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(query).one_or_none()

    def get(self, reservation_id: int) -> Reservation | None:
        """A reservation by id, read afresh (not locked)."""
        query = (
            select(Reservation)
            .where(_reservations.c.id == reservation_id)
            .execution_options(populate_existing=True)
        )
        return self.session.scalars(query).one_or_none()

    def lock(self, reservation_id: int) -> Reservation:
        """A reservation by id, locked and read afresh."""
        query = (
            select(Reservation)
            .where(_reservations.c.id == reservation_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self.session.scalars(query).one()

    def fulfilled_by(self, loan: Loan) -> bool:
        """Whether `loan`'s checkout fulfilled a reservation of its member.

        The checkout marks the reservation `fulfilled` in the loan's own transaction,
        so that reservation's `updated_at` is the loan's `checked_out_at` (one
        transaction time), and `fulfilled` is final. Used only when answering a
        checkout whose ledger row was purged, so no index is kept for it.
        """
        query = select(func.count()).where(
            _reservations.c.copy_id == loan.copy_id,
            _reservations.c.member_id == loan.member_id,
            _reservations.c.status == ReservationStatus.FULFILLED.value,
            _reservations.c.updated_at == loan.checked_out_at,
        )
        return bool(self.session.execute(query).scalar_one())

    def lock_holding(self, copy_id: int) -> Reservation | None:
        """The ready reservation the copy is held for, locked."""
        query = (
            select(Reservation)
            .where(
                _reservations.c.copy_id == copy_id,
                _reservations.c.status == ReservationStatus.READY.value,
            )
            .with_for_update()
        )
        return self.session.scalars(query).one_or_none()

    def lock_queue_head(self, work_id: int) -> Reservation | None:
        """The longest-waiting queued reservation of the work, locked.

        Callers hold the work's row lock, so nobody else is changing the queue.
        """
        query = (
            self._queued(work_id)
            .order_by(_reservations.c.queued_at, _reservations.c.id)
            .limit(1)
            .with_for_update()
        )
        return self.session.scalars(query).first()

    def count_waiting(self, work_id: int, except_member_id: int) -> int:
        """Members other than `except_member_id` queued for the work."""
        query = select(func.count()).where(
            _reservations.c.work_id == work_id,
            _reservations.c.status == ReservationStatus.QUEUED.value,
            _reservations.c.member_id != except_member_id,
        )
        return self.session.execute(query).scalar_one()

    def position(self, reservation: Reservation) -> int:
        """1 for the head of the queue, 2 for the next, …"""
        ahead = select(func.count()).where(
            _reservations.c.work_id == reservation.work_id,
            _reservations.c.status == ReservationStatus.QUEUED.value,
            tuple_(_reservations.c.queued_at, _reservations.c.id)
            < tuple_(reservation.queued_at, reservation.id),
        )
        return self.session.execute(ahead).scalar_one() + 1

    @staticmethod
    def _queued(work_id: int) -> Select:
        return select(Reservation).where(
            _reservations.c.work_id == work_id,
            _reservations.c.status == ReservationStatus.QUEUED.value,
        )
