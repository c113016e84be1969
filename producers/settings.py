"""The one settings object, read from the environment (and an optional `.env` file).

Both sides read it: the publisher and the CLI need the broker and the database, the
worker needs everything. Nothing else in orderq reads `os.environ`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/orderq"
LOCAL_BROKER_URL = "redis://127.0.0.1:6379/0"


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
    # A database host that stops answering must not hang a connect for minutes.
    db_connect_timeout_seconds: PositiveInt = 10
    db_sslmode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = None

    # -- command execution --------------------------------------------------------------
    max_attempts: PositiveInt = 5
    # An error the taxonomy does not recognise is likely a bug that will repeat:
    # give up on it sooner than on a transient one (never later than max_attempts).
    max_unknown_error_attempts: PositiveInt = 3
    retry_backoff_seconds: PositiveFloat = 1.0
    retry_backoff_max_seconds: PositiveFloat = 60.0
    task_time_limit_seconds: PositiveInt = 120
    task_soft_time_limit_seconds: PositiveInt = 100
    # Must stay above the longest task plus the longest retry countdown: Redis hands an
    # unacknowledged message to another worker once this has passed.
    redis_visibility_timeout_seconds: PositiveInt = 3600
    # How often a worker looks for unacknowledged messages older than the visibility
    # timeout (left behind by a worker that died whole) and puts them back on the queue.
    redis_unacked_restore_interval_seconds: PositiveInt = 30
    # A broker that hangs without closing the connection must not hang a publish.
    broker_socket_timeout_seconds: PositiveFloat = 10.0
    max_payload_bytes: PositiveInt = 64 * 1024

    # -- publisher ----------------------------------------------------------------------
    publish_max_retries: int = Field(default=5, ge=0)
    publish_retry_interval_seconds: PositiveFloat = 0.5

    # -- testing only: deterministic fault injection, see worker/service/failpoints.py ----
    failpoints: str = ""

    @model_validator(mode="after")
    def _visibility_outlasts_a_task(self) -> Settings:
        longest = self.task_time_limit_seconds + self.retry_backoff_max_seconds
        if self.redis_visibility_timeout_seconds <= longest:
            raise ValueError(
                f"ORDERQ_REDIS_VISIBILITY_TIMEOUT_SECONDS ({self.redis_visibility_timeout_seconds})"
                f" must exceed the task time limit plus the longest retry countdown ({longest:g}),"
                " or Redis hands a running command to a second worker"
            )
        if self.task_soft_time_limit_seconds >= self.task_time_limit_seconds:
            raise ValueError(
                "ORDERQ_TASK_SOFT_TIME_LIMIT_SECONDS must be below ORDERQ_TASK_TIME_LIMIT_SECONDS"
            )
        return self

    def resolved_database_url(self) -> str:
        """The database to use: the configured one, else the local default."""
        return self.database_url or LOCAL_DATABASE_URL

    def resolved_broker_url(self) -> str:
        """The broker to use: the configured one, else the local default."""
        return self.broker_url or LOCAL_BROKER_URL


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
