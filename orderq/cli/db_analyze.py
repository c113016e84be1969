"""`orderq db analyze`: the top statements' plans, with recommendations."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from orderq.cli.console import console, fail, resolved_settings
from orderq.cli.db import db_app
from orderq.cli.values import whole_number
from producers.database import build_engine


@db_app.command("analyze")
def analyze(
    limit: Annotated[
        int, typer.Option("--limit", parser=whole_number(1, 100), metavar="N", help="Statements.")
    ] = 10,
    min_calls: Annotated[int, typer.Option("--min-calls", parser=whole_number(1), metavar="N")] = 1,
    large: Annotated[
        int,
        typer.Option(
            "--large-table-rows",
            parser=whole_number(1),
            metavar="ROWS",
            help="A table this big is 'large'.",
        ),
    ] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The statements with the most total time (pg_stat_statements), each with its
    generic plan and what to do: sequential scans of large tables, filters no index
    serves, large sorts, planning time out of proportion. Nothing is executed."""
    from worker.adapters.monitoring import statements_unavailable
    from worker.adapters.plan_advice import analyze_top_statements

    settings = resolved_settings(quiet=as_json)
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            reason = statements_unavailable(connection)
            analyses = [] if reason else analyze_top_statements(connection, limit, min_calls, large)
            connection.rollback()
    except Exception as error:
        fail(
            f"could not analyze the statements: {error.__class__.__name__}: "
            f"{' '.join(str(error).split())[:300]}",
            code=1,
        )
    finally:
        engine.dispose()
    if reason:
        fail(reason, code=1)
    if as_json:
        typer.echo(json.dumps({"statements": [a.as_dict() for a in analyses]}, default=str))
        return
    if not analyses:
        console.print("[dim]no statements recorded yet[/]")
    for rank, analysis in enumerate(analyses, 1):
        query = escape(" ".join(analysis.query.split())[:300])
        console.print(
            f"[bold]{rank}.[/] {analysis.calls:,} calls · mean {analysis.mean_exec_ms:.2f} ms · "
            f"total {analysis.total_exec_ms:,.0f} ms\n   {query}",
            highlight=False,
        )
        if analysis.unexplained:
            console.print(f"   [dim]not explained: {escape(analysis.unexplained)}[/]")
            continue
        indexes = ", ".join(analysis.indexes) or "no index"
        planning = f" · planning {analysis.plan_ms:.2f} ms" if analysis.plan_ms is not None else ""
        console.print(f"   plan: {analysis.top_node} · reads {indexes}{planning}", highlight=False)
        for advice in analysis.advice:
            console.print(
                f"   [yellow]![/] {escape(advice.detail)}\n     → {escape(advice.recommendation)}",
                highlight=False,
            )
        if not analysis.advice:
            console.print("   [green]no recommendation[/]")
