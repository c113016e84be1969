"""`orderq db report`: the database's health at a glance, or as JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from orderq.cli.console import FAILED, console, describe_failure, fail, resolved_settings
from orderq.cli.values import whole_number
from producers.database import build_engine

db_app = typer.Typer(
    help="Look after the database: health report, backup, restore, verify.", no_args_is_help=True
)


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _ratio(value: float | None) -> str:
    return "no reads yet" if value is None else f"{value * 100:.2f} %"


def _table(title: str, columns: list[str], rows: list[list[Any]], empty: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    if not rows:
        table.add_row(f"[dim]{empty}[/]", *[""] * (len(columns) - 1))
    return table


def _render(report: dict[str, Any]) -> None:
    console.print(f"[bold]database[/] {report['database']} · PostgreSQL {report['server_version']}")
    console.print(
        _table(
            "Connections by state",
            ["state", "application", "connections", "oldest transaction (s)"],
            [
                [
                    r["state"],
                    r["application"],
                    r["connections"],
                    "-" if r["oldest_transaction_s"] is None else r["oldest_transaction_s"],
                ]
                for r in report["connections"]
            ],
            "none",
        )
    )
    statements = report["statements"]
    if statements["available"]:
        console.print(
            _table(
                "Slowest statements (mean time)",
                ["mean ms", "calls", "total ms", "rows", "statement"],
                [
                    [s["mean_ms"], s["calls"], s["total_ms"], s["rows"], s["query"]]
                    for s in statements["slowest"]
                ],
                "no statements recorded yet",
            )
        )
    else:
        console.print(f"[bold]Slowest statements[/]\n[yellow]{statements['reason']}[/]")
    indexes = report["indexes"]
    problems = [
        [kind, ix["table"], ix["index"], ix["scans"], _bytes(ix["bytes"]), ix.get("covered_by", "")]
        for kind in ("invalid", "duplicate", "unused")
        for ix in indexes[kind]
    ]
    console.print(
        _table(
            "Index problems (unused = no scan since statistics were reset)",
            ["problem", "table", "index", "scans", "size", "covered by"],
            problems,
            "none",
        )
    )
    console.print(
        _table(
            "Largest indexes",
            ["table", "index", "scans", "size", "unique"],
            [
                [ix["table"], ix["index"], ix["scans"], _bytes(ix["bytes"]), ix["unique"]]
                for ix in indexes["largest"]
            ],
            "none",
        )
    )
    console.print(
        _table(
            "Tables",
            ["table", "rows (est.)", "table", "indexes", "total"],
            [
                [
                    t["table"],
                    t["rows"],
                    _bytes(t["table_bytes"]),
                    _bytes(t["index_bytes"]),
                    _bytes(t["total_bytes"]),
                ]
                for t in report["tables"]
            ],
            "no tables",
        )
    )
    cache = report["cache_hit_ratio"]
    console.print(
        f"[bold]Cache hit ratio[/] tables {_ratio(cache['tables'])} · "
        f"indexes {_ratio(cache['indexes'])}"
    )
    commands = report["commands"]
    console.print(
        f"[bold]Commands[/] dead letters: {commands['failed']} failed, "
        f"{commands['discarded']} discarded · no outcome after "
        f"{commands['stuck_after_seconds']:g}s: {commands['stuck']}"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


@db_app.command("report")
def report(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", parser=whole_number(1, 1000), metavar="N", help="Rows per section."
        ),
    ] = 10,
) -> None:
    """Connections by state, slowest statements, index problems, sizes, cache hit ratio."""
    from worker.adapters.monitoring import database_report

    settings = resolved_settings(quiet=as_json)
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as connection:
            data = database_report(connection, limit, settings.stuck_command_after_seconds)
    except Exception as error:
        fail(f"could not read the database statistics: {describe_failure(error)}", code=FAILED)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(data, default=_json_default))
    else:
        _render(data)
