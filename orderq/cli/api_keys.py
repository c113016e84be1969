"""`orderq api-keys create|list|revoke`: who may call the HTTP API."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from orderq.cli.console import console, fail, resolved_settings
from orderq.cli.values import whole_number
from orderq.http.api_keys import (
    ApiKeyError,
    check_client_name,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from producers.database import build_engine

api_keys_app = typer.Typer(
    help="API keys for the HTTP service (one client, several keys).", no_args_is_help=True
)


def _engine():
    settings = resolved_settings(quiet=True)
    return build_engine(settings, pool_size=1, max_overflow=0)


@api_keys_app.command("create")
def create(
    client: Annotated[
        str, typer.Option("--client", help="The upstream client (scopes its idempotency keys).")
    ],
    operator: Annotated[
        bool,
        typer.Option(
            "--operator",
            help="The key may also read operator data over HTTP (the ledger of every client).",
        ),
    ] = False,
) -> None:
    """Create a key for CLIENT; the token is the last line of the output, shown once."""
    try:
        check_client_name(client)
    except ApiKeyError as error:
        fail(str(error))
    engine = _engine()
    try:
        new = create_api_key(engine, client, operator=operator)
    except Exception as error:
        fail(f"could not create the key: {error.__class__.__name__}: {error}", code=1)
    finally:
        engine.dispose()
    console.print(
        f"created {'operator ' if operator else ''}API key {new.key.id} for client "
        f"[bold]{client}[/] — store this token now, "
        "it is not shown again. Send it as: Authorization: Bearer <token>",
        highlight=False,
    )
    print(new.token)


@api_keys_app.command("list")
def list_keys(
    client: Annotated[str | None, typer.Option("--client", help="Only this client's keys.")] = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """List keys (id, client, the token's first characters, operator, created, revoked)."""
    engine = _engine()
    try:
        keys = list_api_keys(engine, client, revoked)
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps([key.as_dict() for key in keys]))
        return
    if not keys:
        console.print("no API keys" + (f" for client {client}" if client else ""))
        return
    table = Table("id", "client", "token", "operator", "created", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            key.client,
            key.token_prefix + "…",
            "yes" if key.operator else "",
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
    console.print(table)


@api_keys_app.command("revoke")
def revoke(
    key_id: Annotated[
        int,
        typer.Argument(parser=whole_number(1), metavar="ID", help="The key's id (see: list)."),
    ],
) -> None:
    """Revoke a key: requests with its token get 401 from now on."""
    engine = _engine()
    try:
        key = revoke_api_key(engine, key_id)
    except ApiKeyError as error:
        fail(str(error), code=1)
    finally:
        engine.dispose()
    console.print(f"revoked API key {key.id} of client {key.client}")
