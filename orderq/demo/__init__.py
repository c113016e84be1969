"""`orderq demo`: exactly-once at work, shown with numbers read from the database.

The demo is a list of scenarios (`SCENARIOS`), each a series of waves of deliveries
published concurrently, followed by a summary and invariant checks that are queries
against the database — never counters kept by this script. Keys and SKUs carry the
run's tag (`demo-<tag>-…`, `DEMO-<TAG>-…`), so runs never collide and each run's
numbers can be read back on their own.

Scenarios: `orders.OrdersScenario` (customers racing for scarce stock, duplicate
publishes, a reused key with another payload, late retries of rejected orders,
invalid messages) and `loans.LoansScenario` (members racing to borrow one copy, a
renewal refused while others wait, a return handing the copy to the first in the
queue).
"""

from __future__ import annotations

from orderq.demo.loans import LoansScenario
from orderq.demo.orders import OrdersScenario
from orderq.demo.scenario import Check, DemoRun, Row, Scenario

SCENARIOS = (OrdersScenario, LoansScenario)

__all__ = ["SCENARIOS", "Check", "DemoRun", "LoansScenario", "OrdersScenario", "Row", "Scenario"]
