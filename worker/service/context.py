"""What a handler knows about the delivery it runs in."""

from __future__ import annotations

from dataclasses import dataclass

from worker.domain.loans import LoanPolicy
from worker.service.failpoints import Failpoints

NO_FAILPOINTS = Failpoints()


@dataclass(frozen=True)
class CommandContext:
    """The key, the loan policy in force, this delivery's attempt number and the
    process's failpoints."""

    key: str
    loan_policy: LoanPolicy
    attempt: int = 1
    failpoints: Failpoints = NO_FAILPOINTS
    #: the country of nationally written phone numbers (settings.phone_region)
    phone_region: str | None = None

    def failpoint(self, point: str) -> None:
        self.failpoints.hit(point, self.key, self.attempt)
