"""The one settings object, read from the environment (and an optional `.env` file).

Both sides read it: the publisher and the CLI need the broker and the database, the
worker needs everything. Nothing else in orderq reads `os.environ`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from producers.embedded import EmbeddedServers


class ConfigurationError(ValueError):
    """The settings cannot be used as they are (the message says what to change)."""


def default_data_dir() -> Path:
    """Where the embedded servers keep their data: the platform's per-user data folder
    (~/.local/share/orderq on Linux, ~/Library/Application Support/orderq on macOS)."""
    import platformdirs

    return platformdirs.user_data_path("orderq")


class Settings(BaseSettings):
    """Everything orderq can be told, with the environment variable that sets it.

    Fields without an alias read `ORDERQ_<NAME>`; the two URLs use the names every
    hosting platform already sets (`DATABASE_URL`, `CELERY_BROKER_URL`).
    """

    model_config = SettingsConfigDict(
        env_prefix="ORDERQ_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "ORDERQ_DATABASE_URL")
    )
    broker_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CELERY_BROKER_URL", "ORDERQ_BROKER_URL"),
    )

    # -- embedded servers: used when neither URL above is set (see producers/embedded) --
    data_dir: Path = Field(default_factory=default_data_dir)

    # -- queues -----------------------------------------------------------------------
    command_queue: str = "orderq.commands"
    maintenance_queue: str = "orderq.maintenance"

    # -- database pool and session guards -----------------------------------------------
    pool_size: PositiveInt = 5
    pool_max_overflow: int = Field(default=5, ge=0)
    pool_timeout_seconds: PositiveFloat = 10.0
    pool_recycle_seconds: int = 1800
    pool_pre_ping: bool = True
    statement_timeout_ms: int = Field(default=15_000, ge=0)
    lock_timeout_ms: int = Field(default=5_000, ge=0)
    idle_in_transaction_timeout_ms: int = Field(default=60_000, ge=0)
    application_name: str = "orderq"
    db_sslmode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = None

    # -- command execution --------------------------------------------------------------
    max_attempts: PositiveInt = 5
    retry_backoff_seconds: PositiveFloat = 1.0
    retry_backoff_max_seconds: PositiveFloat = 60.0
    task_time_limit_seconds: PositiveInt = 120
    task_soft_time_limit_seconds: PositiveInt = 100
    # Must stay above the longest task plus the longest retry countdown: Redis hands an
    # unacknowledged message to another worker once this has passed.
    redis_visibility_timeout_seconds: PositiveInt = 3600
    max_payload_bytes: PositiveInt = 64 * 1024

    # -- publisher ----------------------------------------------------------------------
    publish_max_retries: int = Field(default=5, ge=0)
    publish_retry_interval_seconds: PositiveFloat = 0.5

    # -- Flower: user:password for basic auth (`orderq up` generates one when unset) -----
    flower_basic_auth: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FLOWER_BASIC_AUTH", "ORDERQ_FLOWER_BASIC_AUTH"),
    )

    # -- testing only: deterministic fault injection, see worker/service/failpoints.py ----
    failpoints: str = ""

    @property
    def uses_embedded_servers(self) -> bool:
        """True when no URL is configured: orderq runs its own PostgreSQL and Redis."""
        return self.database_url is None and self.broker_url is None

    def embedded_servers(self) -> EmbeddedServers:
        """The embedded PostgreSQL and Redis under `data_dir`, started if not running.

        Only for the unconfigured case: setting one URL but not the other is refused,
        so orderq never mixes a real server with an embedded one by accident.
        """
        if not self.uses_embedded_servers:
            given, missing = (
                ("DATABASE_URL", "CELERY_BROKER_URL")
                if self.database_url
                else ("CELERY_BROKER_URL", "DATABASE_URL")
            )
            raise ConfigurationError(
                f"{given} is set but {missing} is not: set both to use your own servers, "
                "or neither to use the embedded ones"
            )
        from producers.embedded import ensure_running

        return ensure_running(self.data_dir)

    def resolved_database_url(self) -> str:
        """The database to use: the configured one, else the embedded server's."""
        return self.database_url or self.embedded_servers().database_url

    def resolved_broker_url(self) -> str:
        """The broker to use: the configured one, else the embedded Redis."""
        return self.broker_url or self.embedded_servers().broker_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
