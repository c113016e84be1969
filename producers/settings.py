"""What a producer needs to know: where the broker and the database are, and how to
talk to them. Read from the environment (and an optional `.env` file).

Reading settings never starts or creates anything. The worker's settings extend this
class (`worker.settings.WorkerSettings`), so one object, read once at a process's
edge, configures every layer of that process.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from producers.errors import ConfigurationError

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
Pooler = Literal["none", "pgbouncer"]
SessionGuards = Literal["auto", "connection", "transaction", "server"]


class ProducerSettings(BaseSettings):
    """The broker, the database and the command queue, with the variables that set them.

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
    command_queue: str = "orderq.commands"

    # -- database connections: every orderq process connects the same way --------------
    statement_timeout_ms: int = Field(default=15_000, ge=0)
    lock_timeout_ms: int = Field(default=5_000, ge=0)
    idle_in_transaction_timeout_ms: int = Field(default=60_000, ge=0)
    application_name: str = "orderq"
    # A database host that stops answering must not hang a connect for minutes.
    db_connect_timeout_seconds: PositiveInt = 10
    db_sslmode: SslMode | None = None
    # What sits between orderq and PostgreSQL. "pgbouncer" = PgBouncer in transaction
    # pooling: no startup options (PgBouncer refuses them), no server-side prepared
    # statements (PgBouncer < 1.21 cannot route them), no session state. PgBouncer in
    # session pooling behaves like a direct connection: leave "none". docs/scaling.md
    db_pooler: Pooler = "none"
    # How the three timeouts above reach the server:
    #   connection  - startup options of every new connection (direct connections only)
    #   transaction - SET LOCAL at the start of every transaction (works through PgBouncer;
    #                 single autocommitted statements then run under the role's defaults)
    #   server      - nothing is sent: the role or database carries them (ALTER ROLE … SET,
    #                 see `orderq db session-guards`), the cheapest way through a pooler
    #   auto        - connection without a pooler, transaction with one
    db_session_guards: SessionGuards = "auto"
    # Straight to PostgreSQL, never through a pooler: what PgBouncer in transaction mode
    # cannot carry (migrations with CREATE INDEX CONCURRENTLY, pg_dump / pg_restore,
    # CREATE DATABASE). Unset: DATABASE_URL is used.
    admin_database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ORDERQ_ADMIN_DATABASE_URL", "ADMIN_DATABASE_URL"),
    )

    # -- broker ---------------------------------------------------------------------------
    # Must stay above the longest task plus the longest retry countdown: Redis hands an
    # unacknowledged message to another worker once this has passed.
    redis_visibility_timeout_seconds: PositiveInt = 3600
    # How often a worker looks for unacknowledged messages older than the visibility
    # timeout (left behind by a worker that died whole) and puts them back on the queue.
    redis_unacked_restore_interval_seconds: PositiveInt = 30
    # A broker that hangs without closing the connection must not hang a publish.
    broker_socket_timeout_seconds: PositiveFloat = 10.0

    # -- publishing ---------------------------------------------------------------------
    publish_max_retries: int = Field(default=5, ge=0)
    publish_retry_interval_seconds: PositiveFloat = 0.5
    max_payload_bytes: PositiveInt = 64 * 1024

    @model_validator(mode="after")
    def _guards_fit_the_pooler(self) -> ProducerSettings:
        if self.db_pooler == "pgbouncer" and self.db_session_guards == "connection":
            raise ValueError(
                "ORDERQ_DB_SESSION_GUARDS=connection sends startup options, which PgBouncer "
                "refuses: use transaction or server with ORDERQ_DB_POOLER=pgbouncer"
            )
        return self

    @property
    def session_guards(self) -> Literal["connection", "transaction", "server"]:
        """The way the timeouts reach the server, `auto` resolved."""
        if self.db_session_guards != "auto":
            return self.db_session_guards
        return "connection" if self.db_pooler == "none" else "transaction"

    def require_admin_database_url(self) -> str:
        """A URL straight to PostgreSQL (the admin URL, else DATABASE_URL)."""
        return self.admin_database_url or self.require_database_url()

    def require_database_url(self) -> str:
        """The configured database URL, or `ConfigurationError` naming the variable."""
        if not self.database_url:
            raise ConfigurationError(
                "DATABASE_URL is not set: point it at your PostgreSQL "
                "(or run through the `orderq` command, which starts embedded servers)"
            )
        return self.database_url

    def require_broker_url(self) -> str:
        """The configured broker URL, or `ConfigurationError` naming the variable."""
        if not self.broker_url:
            raise ConfigurationError(
                "CELERY_BROKER_URL is not set: point it at your Redis or RabbitMQ "
                "(or run through the `orderq` command, which starts embedded servers)"
            )
        return self.broker_url

    def require_servers(self) -> None:
        """`ConfigurationError` naming every missing URL, unless both are configured."""
        if not self.database_url and not self.broker_url:
            raise ConfigurationError(
                "DATABASE_URL and CELERY_BROKER_URL are not set: point them at your "
                "PostgreSQL and your Redis or RabbitMQ "
                "(or run through the `orderq` command, which starts embedded servers)"
            )
        self.require_database_url()
        self.require_broker_url()
