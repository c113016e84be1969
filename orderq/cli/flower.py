"""`orderq flower`: the Celery monitoring UI, with credentials and persistent state.

Outside local development Flower refuses to start without `FLOWER_BASIC_AUTH`
(`user:password`, several separated by commas). Its `/metrics` and `/healthcheck`
endpoints are not behind that login (upstream behaviour): expose Flower only on an
internal network. Task history survives restarts in `ORDERQ_FLOWER_STATE_FILE`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from orderq.cli.console import fail, resolved_settings, settings_or_fail
from orderq.cli.values import whole_number
from orderq.settings import Settings

REFUSAL = (
    "Flower needs credentials outside local development: set FLOWER_BASIC_AUTH=user:password "
    "(or pass --dev / ORDERQ_DEV_MODE=true on your own machine)"
)


class FlowerRefused(ValueError):
    """Flower must not start with these settings."""


def flower_credentials(settings: Settings, dev: bool) -> str | None:
    """The validated basic-auth value, None in development without one; else refuse."""
    secret = settings.flower_basic_auth
    value = secret.get_secret_value().strip() if secret is not None else ""
    if not value:
        if dev or settings.dev_mode:
            return None
        raise FlowerRefused(REFUSAL)
    for pair in value.split(","):
        user, sep, password = pair.partition(":")
        if not sep or not user.strip() or not password:
            raise FlowerRefused(
                "FLOWER_BASIC_AUTH must be user:password (several separated by commas)"
            )
    return value


def flower_arguments(settings: Settings, port: int | None, address: str | None) -> list[str]:
    """Flower's command line: events on, state kept across restarts."""
    state = Path(settings.flower_state_file)
    return [
        "flower",
        f"--port={port or settings.flower_port}",
        f"--address={address or settings.flower_address}",
        # ask workers to send task events while Flower watches (off by default: cost)
        "--enable_events=True",
        "--persistent=True",
        f"--db={state}",
        "--state_save_interval=60000",  # ms: a crash loses at most a minute of history
        "--purge_offline_workers=86400",
    ]


def flower(
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            parser=whole_number(1, 65535),
            metavar="PORT",
            help="Port to listen on (default: ORDERQ_FLOWER_PORT, 5555).",
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            metavar="ADDRESS",
            help="Interface to bind (default: ORDERQ_FLOWER_ADDRESS, 127.0.0.1).",
        ),
    ] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="Local development: allow running without credentials.")
    ] = False,
) -> None:
    """Start Flower. Requires FLOWER_BASIC_AUTH=user:password unless --dev."""
    settings = settings_or_fail()
    try:
        credentials = flower_credentials(settings, dev)
    except FlowerRefused as refusal:
        fail(str(refusal))
    settings = resolved_settings(settings)
    arguments = flower_arguments(settings, port, address)
    Path(settings.flower_state_file).parent.mkdir(parents=True, exist_ok=True)
    if credentials:
        # Flower reads FLOWER_BASIC_AUTH itself; passing it this way keeps the password
        # out of the process list (argv is world-readable in /proc).
        os.environ["FLOWER_BASIC_AUTH"] = credentials
    from worker.entrypoints.celery_app import app

    app.start(arguments)
