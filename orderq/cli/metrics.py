"""`orderq metrics serve`: Prometheus metrics for deployments without the HTTP service."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from orderq.cli.console import console, err_console, fail, resolved_settings
from orderq.cli.values import whole_number

metrics_app = typer.Typer(
    help="Prometheus metrics (see docs/observability.md).", no_args_is_help=True
)

NO_SHARED_FOLDER = (
    "PROMETHEUS_MULTIPROC_DIR is not set: serving the queue, dead-letter and quarantine "
    "gauges only. For the workers' counters set it to one folder for every orderq process "
    "on this host (docs/observability.md)."
)


@metrics_app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to bind (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", parser=whole_number(1, 65535), metavar="PORT", help="Port (default 9532)."
        ),
    ] = None,
) -> None:
    """Serve /metrics until Ctrl-C: what every orderq process on this host recorded
    (PROMETHEUS_MULTIPROC_DIR) plus queue depth and age, dead letters and quarantine,
    read at each scrape."""
    settings = resolved_settings()
    from orderq.observability.server import start_metrics_server
    from worker.adapters.metrics import prepare_multiprocess_dir
    from worker.entrypoints.log_format import configure_logging

    configure_logging(settings)
    if prepare_multiprocess_dir(settings) is None:
        err_console.print(f"[yellow]{NO_SHARED_FOLDER}[/]", highlight=False)
    host = host or settings.metrics_host
    port = port or settings.metrics_port
    try:
        server = start_metrics_server(settings, host, port)
    except OSError as error:
        fail(f"cannot serve metrics on {host}:{port}: {error.strerror or error}", code=1)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    console.print(f"serving metrics on {server.url}", highlight=False)
    try:
        while not stop.wait(1):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
    console.print("metrics server stopped")
