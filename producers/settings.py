"""The one settings object, read from the environment (and an optional `.env` file).

Both sides read it: the publisher and the CLI need the broker and the database, the
worker needs everything. Nothing else in orderq reads `os.environ`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt, SecretStr, model_validator
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
    # A ping per checkout costs a round trip on every command; without it a connection
    # the server dropped fails its first statement, which the worker retries as a
    # transient error (and SQLAlchemy then replaces the pool's connections).
    pool_pre_ping: bool = False
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
    # Celery task events (see celery_config.py): Flower turns them on while it runs
    task_events: bool = False
    max_payload_bytes: PositiveInt = 64 * 1024

    # -- library loans --------------------------------------------------------------------
    loan_period_days: PositiveInt = 21
    loan_renewal_limit: int = Field(default=2, ge=0)
    # how long a returned copy stays on the hold shelf for the first waiting member
    reservation_hold_days: PositiveInt = 7

    # -- publisher ----------------------------------------------------------------------
    publish_max_retries: int = Field(default=5, ge=0)
    publish_retry_interval_seconds: PositiveFloat = 0.5

    # -- maintenance (Celery beat -> the maintenance queue); see docs/operations.md ----------
    # Each schedule is an interval in seconds; 0 turns that task off.
    schedule_expire_unpaid_orders_seconds: int = Field(default=300, ge=0)
    schedule_expire_reservations_seconds: int = Field(default=300, ge=0)
    schedule_mark_overdue_loans_seconds: int = Field(default=900, ge=0)
    schedule_purge_ledger_seconds: int = Field(default=3600, ge=0)
    schedule_analyze_seconds: int = Field(default=3600, ge=0)
    schedule_index_health_seconds: int = Field(default=86_400, ge=0)
    schedule_statement_snapshot_seconds: int = Field(default=3600, ge=0)
    schedule_republish_stuck_seconds: int = Field(default=120, ge=0)
    # placed orders still unpaid after this long are cancelled (payment window)
    unpaid_order_expiry_seconds: PositiveInt = 24 * 3600
    # Ledger rows older than this are deleted. A duplicate arriving later is still caught
    # by the business unique keys (orders.idempotency_key); keep it well above the
    # longest time a redelivery, producer retry or operator replay can take.
    ledger_retention_days: PositiveFloat = 30.0
    # accepted commands with no outcome after this long are sent again
    stuck_command_after_seconds: PositiveInt = 900
    republish_max_times: PositiveInt = 3
    # rows per transaction, and transactions per run, for every batched task
    maintenance_batch_size: PositiveInt = 1000
    maintenance_max_batches: PositiveInt = 100
    # ANALYZE a hot table once this many rows changed since its last analyze
    analyze_tables: tuple[str, ...] = (
        "command_ledger",
        "command_deliveries",
        "orders",
        "order_items",
        "stock_levels",
        "stock_movements",
        "loans",
        "copies",
        "reservations",
    )
    analyze_min_changed_rows: int = Field(default=1000, ge=0)
    # a statement regressed when its mean time over the last period exceeds its
    # baseline mean by this factor, over at least this many calls
    statement_regression_factor: float = Field(default=2.0, gt=1.0)
    statement_regression_min_calls: PositiveInt = 50
    statement_snapshot_top: PositiveInt = 50
    statement_snapshot_retention_days: PositiveFloat = 30.0

    # -- monitoring -----------------------------------------------------------------------
    # statements slower than this are logged with their duration and shape (never their
    # parameters); a negative value turns the log off
    slow_statement_ms: float = 100.0

    # -- Flower -----------------------------------------------------------------------------
    flower_basic_auth: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("FLOWER_BASIC_AUTH", "ORDERQ_FLOWER_BASIC_AUTH")
    )
    flower_port: int = Field(default=5555, ge=1, le=65535)
    flower_address: str = "127.0.0.1"
    flower_state_file: str = ".orderq/flower-state.db"
    # local development only: lets Flower run without credentials
    dev_mode: bool = False

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
        """The database to use: the configured one, else the embedded server's."""
        return self.database_url or self.embedded_servers().database_url

    def resolved_broker_url(self) -> str:
        """The broker to use: the configured one, else the embedded Redis."""
        return self.broker_url or self.embedded_servers().broker_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
