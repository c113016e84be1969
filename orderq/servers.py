"""Which servers this run uses: yours (both URLs set) or embedded ones (neither set).

Decided once per command, here at the operator's edge; nothing below it ever starts a
server. With no URL configured the embedded PostgreSQL and Redis are started (or
found running) and their URLs are written into this process's environment, so every
child it starts (worker, beat, Flower) reads the same servers from its settings — and
the embedded server's own pg_dump/pg_restore (ORDERQ_PG_BIN_DIR), unless set.
"""

from __future__ import annotations

import os

from orderq.settings import Settings
from producers.errors import ConfigurationError


def resolve_servers(settings: Settings) -> Settings:
    """`settings` with both URLs filled in, starting the embedded servers if needed.

    Setting one URL but not the other is refused, so orderq never mixes a real server
    with an embedded one by accident. Raises `ConfigurationError` or
    `orderq.embedded.EmbeddedServerError`.
    """
    if settings.database_url and settings.broker_url:
        return settings
    if settings.database_url or settings.broker_url:
        given, missing = (
            ("DATABASE_URL", "CELERY_BROKER_URL")
            if settings.database_url
            else ("CELERY_BROKER_URL", "DATABASE_URL")
        )
        raise ConfigurationError(
            f"{given} is set but {missing} is not: set both to use your own servers, "
            "or neither to use the embedded ones"
        )
    from orderq.embedded import ensure_running
    from orderq.embedded.postgres import binaries_dir

    servers = ensure_running(settings.data_dir)
    update: dict[str, object] = {
        "database_url": servers.database_url,
        "broker_url": servers.broker_url,
    }
    os.environ["DATABASE_URL"] = servers.database_url
    os.environ["CELERY_BROKER_URL"] = servers.broker_url
    if settings.pg_bin_dir is None and (tools := binaries_dir()) is not None:
        # pg_dump/pg_restore of the embedded server's own version, for backups and the
        # restore drill of every process this one starts
        os.environ["ORDERQ_PG_BIN_DIR"] = str(tools)
        update["pg_bin_dir"] = tools
    return settings.model_copy(update=update)
