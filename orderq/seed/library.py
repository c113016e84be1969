"""The library: members, works (famous ones first), copies and their loan histories —
consistent by construction:

- a copy's loans follow one another in time (each returned before the next checkout),
  so there is at most one active loan per copy; a copy is `on_loan` exactly when its
  last loan is active, else `available`;
- due = checkout + the loan period; a return comes after its checkout; an active loan
  past due is marked overdue a day after its due date (while still on loan);
- no member holds more active loans than their loan limit.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orderq.seed.names import FAMOUS_WORKS, Names
from orderq.seed.plan import SeedPlan
from worker.domain.contacts import phone_key

MEMBER_COLUMNS = (
    "id",
    "member_number",
    "name",
    "status",
    "loan_limit",
    "email",
    "phone",
    "phone_digits",
    "created_at",
    "updated_at",
)
WORK_COLUMNS = ("id", "work_code", "title", "authors", "created_at", "updated_at")
COPY_COLUMNS = ("id", "work_id", "barcode", "status", "created_at", "updated_at")
LOAN_COLUMNS = (
    "copy_id",
    "member_id",
    "idempotency_key",
    "checked_out_at",
    "due_at",
    "returned_at",
    "renewals",
    "overdue_at",
    "created_at",
    "updated_at",
)
LOAN_PERIOD = timedelta(days=21)
ACTIVE_SHARE = 0.08


@dataclass
class Library:
    plan: SeedPlan
    rng: random.Random
    names: Names
    first_member_id: int
    first_work_id: int
    first_copy_id: int
    phone_region: str | None
    limits: list[int] = field(default_factory=list)
    active: list[int] = field(default_factory=list)

    @property
    def start(self) -> datetime:
        return self.plan.when() - timedelta(days=self.plan.history_days)

    def members(self) -> Iterator[tuple[Any, ...]]:
        for n in range(self.plan.members):
            name = self.names.person()
            limit = self.rng.choices((3, 5, 10), weights=(20, 70, 10))[0]
            status = "suspended" if self.rng.random() < 0.03 else "active"
            email = self.names.email(name, n) if self.rng.random() < 0.85 else None
            phone = self.names.phone() if self.rng.random() < 0.75 else None
            self.limits.append(limit)
            self.active.append(0)
            yield (
                self.first_member_id + n,
                f"{self.plan.tag}-M{n:06d}",
                name,
                status,
                limit,
                email,
                phone,
                phone_key(phone, self.phone_region),
                self.start,
                self.start,
            )

    def works(self) -> Iterator[tuple[Any, ...]]:
        for n in range(self.plan.works):
            if n < len(FAMOUS_WORKS):
                title, authors = FAMOUS_WORKS[n]
            else:
                title, authors = self.names.title(), self.names.authors()
            yield (
                self.first_work_id + n,
                f"{self.plan.tag}-W{n:06d}",
                title,
                list(authors),
                self.start,
                self.start,
            )

    def copies_and_loans(
        self, first_copy: int, count: int, loans_before: int
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Copies `first_copy`… of the seed (each with its loans), and their loans."""
        copies, loans = [], []
        anchor = self.plan.when()
        total_copies = self.plan.copies
        for c in range(first_copy, first_copy + count):
            copy_id = self.first_copy_id + c
            work_id = self.first_work_id + c % self.plan.works
            # spread the loans over the copies as evenly as integers allow
            share = self.plan.loans * (c + 1) // total_copies - self.plan.loans * c // total_copies
            status = "available"
            slot = (anchor - self.start) / max(share, 1)
            for k in range(share):
                slot_start = self.start + slot * k
                out = slot_start + slot * self.rng.uniform(0, 0.3)
                wants_active = k == share - 1 and self.rng.random() < ACTIVE_SHARE
                member = self._active_borrower() if wants_active else None
                active = member is not None
                if member is None:
                    member = self.rng.randrange(self.plan.members)
                due = out + LOAN_PERIOD
                returned = None if active else out + slot * self.rng.uniform(0.05, 0.5)
                overdue = (
                    due + timedelta(days=1) if active and due + timedelta(days=1) < anchor else None
                )
                renewals = 0 if self.rng.random() < 0.8 else 1
                if renewals:
                    due += LOAN_PERIOD
                    if overdue is not None:
                        overdue = (
                            due + timedelta(days=1) if due + timedelta(days=1) < anchor else None
                        )
                if active:
                    status = "on_loan"
                key = f"seed{self.plan.seed}-loan-{loans_before + len(loans)}"
                loans.append(
                    (
                        copy_id,
                        self.first_member_id + member,
                        key,
                        out,
                        due,
                        returned,
                        renewals,
                        overdue,
                        out,
                        returned or out,
                    )
                )
            copies.append(
                (copy_id, work_id, f"{self.plan.tag}-C{c:08d}", status, self.start, self.start)
            )
        return copies, loans

    def _active_borrower(self) -> int | None:
        """A member still under their loan limit (now holding one more), or None."""
        for _ in range(10):
            member = self.rng.randrange(self.plan.members)
            if self.active[member] < self.limits[member]:
                self.active[member] += 1
                return member
        return None
