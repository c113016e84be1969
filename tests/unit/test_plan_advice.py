"""Recommendations read from plans (EXPLAIN FORMAT JSON nodes)."""

from __future__ import annotations

from worker.adapters.plan_advice import advise

ROWS = {"orders": 1_000_000.0, "tiny": 50.0}


def test_a_sequential_scan_of_a_large_table_with_a_filter_asks_for_an_index():
    plan = {"Node Type": "Seq Scan", "Relation Name": "orders", "Filter": "(note = $1)"}

    [advice] = advise(plan, ROWS)

    assert advice.kind == "seq_scan" and advice.relation == "orders"
    assert "(note = $1)" in advice.detail and "add an index on orders" in advice.recommendation


def test_small_tables_and_index_scans_without_filters_need_nothing():
    plan = {
        "Node Type": "Nested Loop",
        "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "tiny", "Filter": "(x = 1)"},
            {"Node Type": "Index Scan", "Relation Name": "orders", "Index Name": "pk_orders"},
        ],
    }
    assert advise(plan, ROWS) == []


def test_a_filter_after_an_index_and_a_large_sort_are_named():
    plan = {
        "Node Type": "Sort",
        "Plan Rows": 250_000,
        "Sort Key": ["created_at DESC"],
        "Plans": [
            {
                "Node Type": "Index Scan",
                "Relation Name": "orders",
                "Index Name": "ix_orders_status_created_at",
                "Filter": "(customer_ref = $2)",
            }
        ],
    }

    kinds = {a.kind: a for a in advise(plan, ROWS)}

    assert set(kinds) == {"large_sort", "filter_after_index"}
    assert "ix_orders_status_created_at" in kinds["filter_after_index"].recommendation
    assert "created_at DESC" in kinds["large_sort"].recommendation


def test_planning_time_out_of_proportion_is_flagged_only_above_the_floor():
    plan = {"Node Type": "Result"}

    [slow] = advise(plan, ROWS, plan_ms=4.0, mean_exec_ms=0.3)
    assert slow.kind == "planning_time" and "prepare" in slow.recommendation
    assert advise(plan, ROWS, plan_ms=0.2, mean_exec_ms=0.05) == []
    assert advise(plan, ROWS, plan_ms=4.0, mean_exec_ms=9.0) == []
