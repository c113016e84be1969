"""`orderq seed`: fill the database with a realistic shop and library (benchmarks, demos)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orderq.cli.console import console, err_console, fail, resolved_settings
from orderq.cli.values import whole_number
from orderq.seed import AlreadySeeded, Reporter, SeedPlan, seed
from producers.database import build_engine


class ProgressBars(Reporter):
    """One rich progress bar per table family."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def begin(self, label: str, total: int) -> None:
        self.tasks[label] = self.progress.add_task(label, total=total)

    def advance(self, label: str, count: int) -> None:
        if label in self.tasks:
            self.progress.advance(self.tasks[label], count)


def _count(flag: str) -> object:
    return typer.Option(flag, parser=whole_number(0, 100_000_000), metavar="N")


def seed_command(
    orders: Annotated[int, _count("--orders")] = 1_000_000,
    loans: Annotated[int, _count("--loans")] = 1_000_000,
    members: Annotated[
        int, typer.Option("--members", parser=whole_number(1, 10_000_000), metavar="N")
    ] = 100_000,
    works: Annotated[
        int, typer.Option("--works", parser=whole_number(1, 10_000_000), metavar="N")
    ] = 100_000,
    products: Annotated[
        int, typer.Option("--products", parser=whole_number(1, 10_000_000), metavar="N")
    ] = 10_000,
    customers: Annotated[
        int, typer.Option("--customers", parser=whole_number(1, 10_000_000), metavar="N")
    ] = 100_000,
    random_seed: Annotated[
        int,
        typer.Option("--seed", parser=whole_number(0), metavar="N", help="Same seed, same rows."),
    ] = 42,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor", help="History ends here (ISO date/time, UTC); default today 00:00."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the row counts as JSON.")] = False,
) -> None:
    """Write a seeded shop and library with COPY in one transaction (nothing is left
    behind if it fails), then VACUUM (ANALYZE). Defaults: 10^6 orders with their items and stock
    movements, 10^6 loans, 10^5 members, 10^5 works, 10^5 customers, 10^4 products."""
    moment = None
    if anchor is not None:
        try:
            moment = datetime.fromisoformat(anchor)
        except ValueError:
            fail(f"--anchor {anchor!r} is not a date or time (like 2026-11-29)")
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    plan = SeedPlan(
        seed=random_seed,
        orders=orders,
        loans=loans,
        members=members,
        works=works,
        products=products,
        customers=customers,
        anchor=moment,
    )
    settings = resolved_settings(quiet=as_json)
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    columns = (
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err_console, transient=as_json) as progress:
            report = seed(engine, plan, ProgressBars(progress), settings.phone_region)
    except AlreadySeeded as error:
        fail(str(error), code=1)
    except Exception as error:
        fail(
            f"seeding failed, nothing was written: {error.__class__.__name__}: "
            f"{' '.join(str(error).split())[:300]}",
            code=1,
        )
    finally:
        engine.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                {"seed": plan.seed, "rows": report.rows, "seconds": round(report.seconds, 1)}
            )
        )
        return
    total = sum(report.rows.values())
    console.print(
        f"seeded {total:,} rows in {report.seconds:.0f} s (seed {plan.seed}): "
        + ", ".join(f"{table} {count:,}" for table, count in report.rows.items())
    )
