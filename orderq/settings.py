"""The operator's settings: the worker's, plus the embedded servers' folder, Flower and
the HTTP service (`orderq.http.settings.HttpSettings`).

Reading them starts nothing. Whether orderq uses your servers or embedded ones is
decided once, at the edge, by `orderq.servers.resolve_servers`.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field, SecretStr

from orderq.http.settings import HttpSettings
from worker.settings import WorkerSettings


def default_data_dir() -> Path:
    """Where the embedded servers keep their data: the platform's per-user data folder
    (~/.local/share/orderq on Linux, ~/Library/Application Support/orderq on macOS).
    Only a path: nothing is created until an embedded server starts."""
    return platformdirs.user_data_path("orderq")


class Settings(WorkerSettings, HttpSettings):
    """Everything orderq can be told, with the environment variable that sets it."""

    # -- embedded servers: used when neither URL is set (see orderq/embedded) -------------
    data_dir: Path = Field(default_factory=default_data_dir)

    # -- read side (orderq/read) -------------------------------------------------------------
    # Signs the keyset cursors listings hand out. Unset: a fixed public key, so cursors
    # are tamper-evident but forgeable — set it where cursors cross a trust boundary.
    read_cursor_secret: SecretStr | None = None

    # -- Flower -----------------------------------------------------------------------------
    flower_basic_auth: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("FLOWER_BASIC_AUTH", "ORDERQ_FLOWER_BASIC_AUTH")
    )
    flower_port: int = Field(default=5555, ge=1, le=65535)
    flower_address: str = "127.0.0.1"
    flower_state_file: str = ".orderq/flower-state.db"
    # local development only: lets Flower run without credentials
    dev_mode: bool = False

    # -- `orderq metrics serve`: Prometheus metrics (docs/observability.md) -----------------
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9532, ge=1, le=65535)
    # each scrape runs a few indexed queries; one that takes longer is cut off and the
    # scrape reports the database as unreachable instead of hanging
    metrics_query_timeout_ms: int = Field(default=2000, ge=100)

    @property
    def uses_embedded_servers(self) -> bool:
        """True when no URL is configured: orderq runs its own PostgreSQL and Redis."""
        return self.database_url is None and self.broker_url is None
