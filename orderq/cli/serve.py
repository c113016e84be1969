"""`orderq serve`: the HTTP intake and read API (orderq/http, docs/http.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from orderq.cli.console import err_console, fail, resolved_settings, settings_or_fail
from orderq.cli.values import whole_number


def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to bind (ORDERQ_HTTP_HOST).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            parser=whole_number(1, 65535),
            metavar="PORT",
            help="Port (ORDERQ_HTTP_PORT or PORT; 8080).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            parser=whole_number(1),
            metavar="N",
            help="Server processes (ORDERQ_HTTP_WORKERS).",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API: POST commands with an Idempotency-Key, GET outcomes and rows."""
    from orderq.schema import current_revisions, head_revisions

    settings = resolved_settings(settings_or_fail())
    assert settings.database_url is not None
    try:
        current = current_revisions(settings.database_url)
    except Exception as error:
        fail(f"cannot reach the database: {error.__class__.__name__}: {error}", code=1)
    if current != head_revisions():
        at = ", ".join(sorted(current)) or "no revision"
        fail(f"the database schema is at {at}, not at head: run `orderq migrate` first", code=1)
    from orderq.http.server import serve as run

    bind = f"{host or settings.http_host}:{port or settings.http_port}"
    err_console.print(f"[dim]orderq HTTP API on http://{bind} (OpenAPI: /openapi.json)[/]")
    run(settings, host, port, workers)
