"""How big a seeded data set is, and from which seed and moment it is drawn."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def today_utc() -> datetime:
    """Midnight UTC today: the default anchor, so a seed replays identically all day."""
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SeedPlan:
    """Row counts, the random seed and the anchor (history ends there)."""

    seed: int = 42
    orders: int = 1_000_000
    loans: int = 1_000_000
    members: int = 100_000
    works: int = 100_000
    products: int = 10_000
    customers: int = 100_000
    copies_per_work: float = 2.5
    history_days: int = 365
    anchor: datetime | None = None
    #: rows generated and sent per COPY round (bounds memory)
    chunk: int = 50_000

    @property
    def tag(self) -> str:
        """Prefix of every code and key this seed writes (S42-…, seed42-…)."""
        return f"S{self.seed}"

    @property
    def copies(self) -> int:
        return max(int(self.works * self.copies_per_work), 1 if self.works else 0)

    def when(self) -> datetime:
        return self.anchor or today_utc()
