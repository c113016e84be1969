"""Run the HTTP service on Granian (what `orderq serve` calls).

Granian imports the app factory in each of its worker processes, which read their
settings from the environment — the caller has put the resolved database and broker
URLs there (`orderq.cli.console.resolved_settings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orderq.settings import Settings

FACTORY = "orderq.http.app:app_from_environment"


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    factory: str = FACTORY,
) -> None:
    """Serve until SIGINT/SIGTERM (then finish requests in flight and stop). `factory`
    (`module:function`, called in each server process) builds the ASGI app: orderq's,
    or one that wraps it."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    Server(
        factory,
        factory=True,
        address=host or settings.http_host,
        port=port or settings.http_port,
        interface=Interfaces.ASGI,
        workers=workers or settings.http_workers,
        http=HTTPModes.http1,
        # hyper answers 431 when the request line and headers outgrow this buffer
        http1_settings=HTTP1Settings(max_buffer_size=settings.http_max_header_bytes),
        log_access=False,
    ).serve()
