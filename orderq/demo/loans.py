"""The loans part of the demo: members racing to borrow one copy, duplicate publishes,
a renewal refused because others wait, a return that hands the copy to the first
reservation in the queue — then what happened, read back from the database."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

from orderq.demo.scenario import (
    Check,
    DemoRun,
    Row,
    command_log,
    label,
    outcome_mismatches,
    rejections,
    repeat_deliveries,
)
from orderq.demo.waves import Delivery, Wave
from producers.command_log import LedgerStatus
from producers.commands import (
    AddCopy,
    AddWork,
    CheckoutCopy,
    Command,
    PlaceReservation,
    RegisterMember,
    RenewLoan,
    ReturnCopy,
)

MEMBERS = 5
RACE_COPIES_SENT = 2  # every checkout in the race is published twice


def twice(*commands: Command) -> list[Delivery]:
    return [Delivery.of(c) for c in commands for _ in range(2)]


@dataclass
class LoansScenario:
    """Deterministic for a given seed; keys and identifiers carry the run's tag."""

    run: DemoRun
    seed: int = 11

    title = "loans"

    # identifiers the desk types, tagged with the run
    def member(self, n: int) -> str:
        return self.run.sku(f"M{n}")

    @property
    def work(self) -> str:
        return self.run.sku("DUNE")

    def copy(self, n: int) -> str:
        return self.run.sku(f"C{n}")

    def key(self, name: str) -> str:
        return self.run.key(f"loan-{name}")

    @property
    def keys(self) -> str:
        return self.run.key("loan-%")

    # -- what is published ---------------------------------------------------------------

    def waves(self) -> Sequence[Wave]:
        return [
            Wave(f"library: {MEMBERS} members and a work (sent twice)", self._setup),
            Wave("two copies of the work (sent twice)", self._copies),
            Wave(f"{MEMBERS} members race for the same copy", self._race),
            Wave("a runner-up borrows the second copy", self._second_copy),
            Wave("the others reserve the work", self._reserve),
            Wave("the winner tries to renew while others wait", self._renew),
            Wave("the copy comes back (return sent twice)", self._return),
            Wave("someone else reaches for the held copy", self._grab_held),
            Wave("the first in the queue collects it", self._collect),
        ]

    def _setup(self, _: Connection) -> list[Delivery]:
        members = [
            RegisterMember(
                key=self.key(f"member-{n}"), member=self.member(n), name=f"Reader {n}", loan_limit=2
            )
            for n in range(1, MEMBERS + 1)
        ]
        work = AddWork(key=self.key("work"), work=self.work, title="Dune", authors=["F. Herbert"])
        return twice(*members, work)

    def _copies(self, _: Connection) -> list[Delivery]:
        copies = [
            AddCopy(key=self.key(f"copy-{n}"), work=self.work, barcode=self.copy(n)) for n in (1, 2)
        ]
        return twice(*copies)

    def _race(self, _: Connection) -> list[Delivery]:
        deliveries = twice(*(self._race_checkout(n) for n in range(1, MEMBERS + 1)))
        random.Random(self.seed).shuffle(deliveries)
        return deliveries

    def _race_checkout(self, n: int) -> CheckoutCopy:
        return CheckoutCopy(key=self.key(f"race-{n}"), member=self.member(n), barcode=self.copy(1))

    def _holder_of(self, connection: Connection, barcode: str) -> str | None:
        return connection.execute(
            text(
                "SELECT m.member_number FROM loans l JOIN copies c ON c.id = l.copy_id "
                "JOIN members m ON m.id = l.member_id "
                "WHERE c.barcode = :barcode AND l.returned_at IS NULL"
            ),
            {"barcode": barcode},
        ).scalar()

    def _runners_up(self, connection: Connection) -> list[str]:
        winner = self._holder_of(connection, self.copy(1))
        return [self.member(n) for n in range(1, MEMBERS + 1) if self.member(n) != winner]

    def _second_copy(self, connection: Connection) -> list[Delivery]:
        first = self._runners_up(connection)[0]
        return twice(CheckoutCopy(key=self.key("second-copy"), member=first, barcode=self.copy(2)))

    def _reserve(self, connection: Connection) -> list[Delivery]:
        waiting = self._runners_up(connection)[1:]
        return twice(
            *(
                PlaceReservation(key=self.key(f"reserve-{m}"), member=m, work=self.work)
                for m in waiting
            )
        )

    def _renew(self, connection: Connection) -> list[Delivery]:
        winner = self._holder_of(connection, self.copy(1)) or self.member(1)
        return twice(RenewLoan(key=self.key("renew"), member=winner, barcode=self.copy(1)))

    def _return(self, _: Connection) -> list[Delivery]:
        return twice(ReturnCopy(key=self.key("return"), barcode=self.copy(1)))

    def _held_for(self, connection: Connection) -> str | None:
        return connection.execute(
            text(
                "SELECT m.member_number FROM reservations r JOIN copies c ON c.id = r.copy_id "
                "JOIN members m ON m.id = r.member_id "
                "WHERE c.barcode = :barcode AND r.status = 'ready'"
            ),
            {"barcode": self.copy(1)},
        ).scalar()

    def _grab_held(self, connection: Connection) -> list[Delivery]:
        holder = self._held_for(connection)
        other = next(m for m in self._runners_up(connection)[1:] if m != holder)
        return twice(CheckoutCopy(key=self.key("grab-held"), member=other, barcode=self.copy(1)))

    def _collect(self, connection: Connection) -> list[Delivery]:
        holder = self._held_for(connection) or self.member(1)
        return twice(CheckoutCopy(key=self.key("collect"), member=holder, barcode=self.copy(1)))

    # -- what happened, from the database ----------------------------------------------

    def _scalar(self, connection: Connection, sql: str, **params: object) -> int:
        params.setdefault("keys", self.keys)
        params.setdefault("copies", self.run.sku("C%"))
        return connection.execute(text(sql), params).scalar() or 0

    def _reason(self, connection: Connection, key: str) -> str:
        full_key = self.key(key)
        return label(command_log(connection).decided_entries([full_key]).get(full_key))

    def summary(self, connection: Connection) -> Sequence[Row]:
        race_keys = [self.key(f"race-{n}") for n in range(1, MEMBERS + 1)]
        won = self._scalar(
            connection,
            "SELECT count(*) FROM loans WHERE idempotency_key = ANY(:race)",
            race=race_keys,
        )
        rows = [
            Row(
                "checkouts of one copy in the race",
                str(MEMBERS * RACE_COPIES_SENT),
                f"{MEMBERS} members, each published twice",
            ),
            Row("  … loans created", str(won), "one copy, one loan"),
            Row(
                "loans in the library",
                str(
                    self._scalar(
                        connection, "SELECT count(*) FROM loans WHERE idempotency_key LIKE :keys"
                    )
                ),
                "returned ones kept as history",
            ),
        ]
        for status, count in connection.execute(
            text(
                "SELECT r.status, count(*) FROM reservations r JOIN works w ON w.id = r.work_id "
                "WHERE w.work_code = :work GROUP BY r.status ORDER BY r.status"
            ),
            {"work": self.work},
        ).all():
            rows.append(
                Row(f"reservations {status}", str(count), RESERVATION_NOTES.get(status, ""))
            )
        rows += [
            Row("renewal while others wait", "", self._reason(connection, "renew")),
            Row("held copy, taken by another member", "", self._reason(connection, "grab-held")),
            Row("held copy, collected by its holder", "", self._reason(connection, "collect")),
        ]
        log = command_log(connection)
        for reason, count in rejections(log.decided_entries_like(self.keys)):
            rows.append(Row(f"rejected: {reason}", str(count), ""))
        repeats = repeat_deliveries(log.delivery_counts_like(self.keys))
        rows.append(
            Row("repeat deliveries answered from the ledger", str(repeats), "no second effect")
        )
        return rows

    def checks(self, connection: Connection) -> Sequence[Check]:
        doubled = self._scalar(
            connection,
            "SELECT count(*) FROM (SELECT l.copy_id FROM loans l JOIN copies c ON c.id = l.copy_id "
            "WHERE c.barcode LIKE :copies AND l.returned_at IS NULL "
            "GROUP BY l.copy_id HAVING count(*) > 1) d",
        )
        race = [self.key(f"race-{n}") for n in range(1, MEMBERS + 1)]
        race_winners = sum(
            entry.status == LedgerStatus.SUCCEEDED
            for entry in command_log(connection).decided_entries(race).values()
        )
        mismatched = outcome_mismatches(connection, self.keys, "loans")
        inconsistent = self._scalar(
            connection,
            """
            SELECT count(*) FROM copies c WHERE c.barcode LIKE :copies AND (
                (c.status = 'on_loan') <> EXISTS (
                    SELECT 1 FROM loans l WHERE l.copy_id = c.id AND l.returned_at IS NULL)
                OR (c.status = 'on_hold') <> EXISTS (
                    SELECT 1 FROM reservations r WHERE r.copy_id = c.id AND r.status = 'ready'))
            """,
        )
        first_in_queue, collector = connection.execute(
            text(
                """
                SELECT (SELECT m.member_number FROM reservations r
                        JOIN members m ON m.id = r.member_id
                        JOIN works w ON w.id = r.work_id
                        WHERE w.work_code = :work ORDER BY r.queued_at, r.id LIMIT 1),
                       (SELECT m.member_number FROM loans l JOIN members m ON m.id = l.member_id
                        WHERE l.idempotency_key = :collect)
                """
            ),
            {"work": self.work, "collect": self.key("collect")},
        ).one()
        renew = self._reason(connection, "renew")
        return [
            Check(
                "never two active loans for one copy",
                doubled == 0,
                f"{doubled} copies with more than one",
            ),
            Check(
                "the raced copy went to exactly one member",
                race_winners == 1,
                f"{race_winners} of {MEMBERS} succeeded",
            ),
            Check(
                "one loan per checkout key, none if rejected",
                mismatched == 0,
                f"{mismatched} mismatched",
            ),
            Check(
                "copy status matches its loans and holds",
                inconsistent == 0,
                f"{inconsistent} inconsistent copies",
            ),
            Check(
                "return handed the copy to the first in the queue",
                first_in_queue is not None and first_in_queue == collector,
                f"first in queue {first_in_queue}, collected by {collector}",
            ),
            Check(
                "renewal refused while others wait",
                renew == "work_has_waiting_reservations",
                renew,
            ),
        ]


RESERVATION_NOTES = {
    "queued": "still waiting",
    "ready": "copy on the hold shelf",
    "fulfilled": "collected by the reserver",
}
