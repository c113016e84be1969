"""`orderq seed`: a realistic shop and library, written with COPY, deterministic per seed.

from orderq.seed import SeedPlan, seed
report = seed(engine, SeedPlan(seed=42, orders=10_000, loans=10_000, members=1_000,
                               works=1_000, products=200, customers=1_000))
"""

from orderq.seed.plan import SeedPlan
from orderq.seed.run import AlreadySeeded, Reporter, SeedReport, seed

__all__ = ["AlreadySeeded", "Reporter", "SeedPlan", "SeedReport", "seed"]
