"""`orderq republish-stuck`: send again the commands whose messages were lost."""

from __future__ import annotations

from typing import Annotated

import typer

from producers.cli.console import announce_targets, console, fail, settings_or_fail
from producers.database import build_engine
from producers.publisher import Publisher, PublishError
from producers.stuck import default_age, republish_stuck


def republish_stuck_command(
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            min=1,
            help="Seconds without news (default: visibility timeout + time limit + backoff).",
        ),
    ] = None,
    horizon: Annotated[
        float, typer.Option("--horizon", min=1, help="Ignore keys untouched for longer.")
    ] = 86_400,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 1000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, do not publish.")] = False,
) -> None:
    """Re-publish commands stuck without an outcome (queued/running, no news for a while).

    Safe to run any time: each key still runs at most once.
    """
    settings = settings_or_fail()
    announce_targets(settings)
    age = older_than if older_than is not None else default_age(settings)
    if horizon <= age:
        fail(f"--horizon ({horizon:g}) must be longer than --older-than ({age:g})")
    engine = build_engine(settings, pool_size=1, max_overflow=0)
    try:
        if dry_run:
            stuck = republish_stuck(engine, None, age, horizon, limit)
        else:
            with Publisher(settings, track=False) as publisher:
                stuck = republish_stuck(engine, publisher, age, horizon, limit)
    except PublishError as error:
        fail(f"{error} — nothing was marked; run again when the broker is back", code=1)
    except Exception as error:
        fail(f"{error.__class__.__name__}: {' '.join(str(error).split())}", code=1)
    finally:
        engine.dispose()
    verb = "would re-publish" if dry_run else "re-published"
    console.print(f"{verb} {len(stuck)} stuck command(s) (no news for {age:g} s)")
    for command in stuck:
        console.print(
            f"  {command.key}  {command.command_type}  {command.state}, "
            f"{command.attempts} attempt(s), last news {command.updated_at:%Y-%m-%d %H:%M:%S}",
            highlight=False,
        )
