"""Everything a worker, the maintenance jobs and beat can be told.

Extends the producer's settings (broker, database, queue), so one object configures a
whole worker process. Plain values: reading them starts nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt, model_validator

from producers.settings import ProducerSettings
from worker.domain.loans import LoanPolicy


class WorkerSettings(ProducerSettings):
    """The worker's knobs; each field reads `ORDERQ_<NAME>`."""

    maintenance_queue: str = "orderq.maintenance"

    # -- database pool ----------------------------------------------------------------------
    pool_size: PositiveInt = 5
    pool_max_overflow: int = Field(default=5, ge=0)
    pool_timeout_seconds: PositiveFloat = 10.0
    pool_recycle_seconds: int = 1800
    # A ping per checkout costs a round trip on every command; without it a connection
    # the server dropped fails its first statement, which the worker retries as a
    # transient error (and SQLAlchemy then replaces the pool's connections).
    pool_pre_ping: bool = False

    # -- command execution --------------------------------------------------------------
    max_attempts: PositiveInt = 5
    # An error the taxonomy does not recognise is likely a bug that will repeat:
    # give up on it sooner than on a transient one (never later than max_attempts).
    max_unknown_error_attempts: PositiveInt = 3
    retry_backoff_seconds: PositiveFloat = 1.0
    retry_backoff_max_seconds: PositiveFloat = 60.0
    task_time_limit_seconds: PositiveInt = 120
    task_soft_time_limit_seconds: PositiveInt = 100
    # Celery task events (see celery_config.py): Flower turns them on while it runs
    task_events: bool = False
    # Batched delivery and group commit (worker/entrypoints/batching.py): a pool process
    # decides up to this many commands in one transaction, each in its own savepoint.
    # 1 turns batching off (one task, one transaction per message).
    # At most 64: every savepoint that writes takes a subtransaction id, and past 64 in
    # one transaction PostgreSQL's snapshot cache overflows for every session.
    batch_max_size: int = Field(default=32, ge=1, le=64)
    # How long a batch may wait for company once a pool process is free. 0: never —
    # a batch is whatever arrived while the pool was busy, so a lone command at low
    # load is dispatched at once and batches grow only with the load.
    batch_max_wait_ms: float = Field(default=0.0, ge=0, le=1000)

    # -- contacts -------------------------------------------------------------------------
    # The country (ISO 3166 code, e.g. "GB") of phone numbers written nationally
    # ("020 7946 0000"): with it they are stored under their international digits, so
    # every spelling of a number finds it (worker/domain/contacts.py). Unset: national
    # numbers keep their own digits, and searches try both forms of an international one.
    phone_region: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    # -- the raw-message guard (worker/adapters/envelope.py, docs/reliability.md) ---------
    # A message may ask to run later (Celery's eta/countdown), but not beyond this: a
    # message held unacknowledged for longer would outlive the broker's redelivery
    # window (Redis visibility timeout, RabbitMQ consumer timeout). Retries need up to
    # retry_backoff_max_seconds. Unset: 300 s, or less if the visibility timeout is short
    # (see `message_delay_limit`).
    max_message_delay_seconds: PositiveFloat | None = None
    # A message may shorten its time limits, but not below this floor: a limit shorter
    # than the attempt bookkeeping would kill the pool process before the attempt is
    # counted, on every delivery, forever. Unset: 5 s (at most half the soft limit).
    min_message_time_limit_seconds: PositiveFloat | None = None
    # JSON nested deeper than this is refused before any code walks it (commands nest 4).
    max_message_depth: PositiveInt = 32
    # How much of a quarantined message's body is kept in PostgreSQL.
    quarantine_body_bytes: PositiveInt = 64 * 1024
    # After an unrecoverable error the worker shuts down warm; if that hangs it is ended
    # with its error status after this long, so a supervisor sees it and restarts it.
    unrecoverable_exit_seconds: PositiveFloat = 30.0

    # -- library loans --------------------------------------------------------------------
    loan_period_days: PositiveInt = 21
    loan_renewal_limit: int = Field(default=2, ge=0)
    # how long a returned copy stays on the hold shelf for the first waiting member
    reservation_hold_days: PositiveInt = 7

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
    # the restore drill (needs ORDERQ_BACKUP_DIR; see docs/backup.md)
    schedule_restore_drill_seconds: int = Field(default=86_400, ge=0)
    # beats forget the claims of runs older than this (schedule_claims)
    schedule_claim_retention_days: PositiveFloat = 7.0
    schedule_purge_quarantine_seconds: int = Field(default=3600, ge=0)
    # placed orders still unpaid after this long are cancelled (payment window)
    unpaid_order_expiry_seconds: PositiveInt = 24 * 3600
    # Ledger rows older than this are deleted. A duplicate arriving later is still caught
    # by the business unique keys (orders.idempotency_key); keep it well above the
    # longest time a redelivery, producer retry or operator replay can take.
    ledger_retention_days: PositiveFloat = 30.0
    # quarantined messages last seen longer ago than this are deleted (their keys keep
    # the rejection the quarantine stored)
    quarantine_retention_days: PositiveFloat = 30.0
    # accepted commands with no outcome after this long are sent again
    stuck_command_after_seconds: PositiveInt = 900
    # commands the HTTP intake accepted and never published (no API process left to
    # relay them) are published by maintenance once this old
    unpublished_command_after_seconds: PositiveInt = 30
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
    # table and index upkeep (worker/service/maintenance/upkeep.py)
    schedule_estimate_bloat_seconds: int = Field(default=86_400, ge=0)
    schedule_vacuum_dead_rows_seconds: int = Field(default=3600, ge=0)
    schedule_reindex_indexes_seconds: int = Field(default=86_400, ge=0)
    # VACUUM (ANALYZE) a table once it has this many dead rows AND this share of its rows
    # dead (autovacuum usually gets there first; this catches tables it lags on)
    vacuum_min_dead_rows: PositiveInt = 10_000
    vacuum_dead_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    # a relation this big whose estimated waste is at least this share counts as bloated
    upkeep_min_bloat_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    upkeep_bloat_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    upkeep_max_tables_per_run: PositiveInt = 5
    upkeep_max_indexes_per_run: PositiveInt = 2
    # a statement regressed when its mean time over the last period exceeds its
    # baseline mean by this factor, over at least this many calls
    statement_regression_factor: float = Field(default=2.0, gt=1.0)
    statement_regression_min_calls: PositiveInt = 50
    statement_snapshot_top: PositiveInt = 50
    statement_snapshot_retention_days: PositiveFloat = 30.0

    # -- backups and the restore drill (docs/backup.md) -------------------------------------
    # where `orderq db backup` files are kept; the drill restores the newest one
    backup_dir: Path | None = None
    # the drill's scratch database (dropped after each drill); default <database>_restore_drill
    restore_drill_database: str | None = None
    # pg_restore is killed past this; the drill's task time limit is set above it
    restore_drill_timeout_seconds: PositiveInt = 1800
    # where pg_dump / pg_restore of the server's version live, if not in the usual places
    pg_bin_dir: Path | None = None

    # -- monitoring -----------------------------------------------------------------------
    # statements slower than this are logged with their duration and shape (never their
    # parameters); a negative value turns the log off
    slow_statement_ms: float = 100.0

    # -- observability: metrics, logs, traces (docs/observability.md) ---------------------
    # "human" (the default) or "json": one JSON object per line, including one line per
    # decided command and per maintenance run.
    log_format: Literal["human", "json"] = "human"
    # prometheus_client's multiprocess mode: every orderq process (prefork children too)
    # writes its metrics to files here and `orderq metrics serve` adds them up.
    # prometheus_client reads the variable itself; orderq reads it from here.
    prometheus_multiproc_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR")
    )
    # OpenTelemetry tracing (the `tracing` extra), set by the standard OTEL_* variables;
    # off unless an exporter or an OTLP endpoint is configured. The exporter reads the
    # rest (headers, timeouts, TLS) from the environment itself.
    otel_traces_exporter: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_TRACES_EXPORTER")
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    otel_exporter_otlp_protocol: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"
        ),
    )
    otel_service_name: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_SERVICE_NAME")
    )
    otel_sdk_disabled: bool = Field(
        default=False, validation_alias=AliasChoices("OTEL_SDK_DISABLED")
    )

    # -- testing only: deterministic fault injection, see worker/service/failpoints.py ----
    failpoints: str = ""
    # where each firing leaves a record (and `pause` waits for its release)
    failpoint_dir: Path | None = None

    @model_validator(mode="after")
    def _visibility_outlasts_a_task(self) -> WorkerSettings:
        drills = self.backup_dir is not None and self.schedule_restore_drill_seconds > 0
        longest_task = max(
            self.task_time_limit_seconds, self.restore_drill_time_limit_seconds if drills else 0
        )
        longest = longest_task + self.retry_backoff_max_seconds
        if self.redis_visibility_timeout_seconds <= longest:
            raise ValueError(
                f"ORDERQ_REDIS_VISIBILITY_TIMEOUT_SECONDS ({self.redis_visibility_timeout_seconds})"
                f" must exceed the longest task time limit plus the longest retry countdown"
                f" ({longest:g}), or Redis hands a running task to a second worker"
            )
        if self.task_soft_time_limit_seconds >= self.task_time_limit_seconds:
            raise ValueError(
                "ORDERQ_TASK_SOFT_TIME_LIMIT_SECONDS must be below ORDERQ_TASK_TIME_LIMIT_SECONDS"
            )
        delay = self.max_message_delay_seconds
        if delay is not None and delay < self.retry_backoff_max_seconds:
            raise ValueError(
                f"ORDERQ_MAX_MESSAGE_DELAY_SECONDS ({delay:g}) must be at least "
                f"ORDERQ_RETRY_BACKOFF_MAX_SECONDS ({self.retry_backoff_max_seconds:g}), or the "
                "worker's own retries would be quarantined"
            )
        if delay is not None and self.redis_visibility_timeout_seconds <= (
            delay + self.task_time_limit_seconds
        ):
            raise ValueError(
                f"ORDERQ_REDIS_VISIBILITY_TIMEOUT_SECONDS ({self.redis_visibility_timeout_seconds})"
                f" must exceed ORDERQ_MAX_MESSAGE_DELAY_SECONDS plus the task time limit "
                f"({delay + self.task_time_limit_seconds:g}), or Redis hands a delayed command "
                "to a second worker"
            )
        floor = self.min_message_time_limit_seconds
        if floor is not None and floor >= self.task_soft_time_limit_seconds:
            raise ValueError(
                "ORDERQ_MIN_MESSAGE_TIME_LIMIT_SECONDS must be below "
                "ORDERQ_TASK_SOFT_TIME_LIMIT_SECONDS"
            )
        return self

    @property
    def restore_drill_time_limit_seconds(self) -> int:
        """The drill task's hard time limit: pg_restore's bound plus time to verify."""
        return self.restore_drill_timeout_seconds + 300

    @property
    def message_delay_limit(self) -> float:
        """How far in the future a message may ask to run (eta/countdown), in seconds."""
        if self.max_message_delay_seconds is not None:
            return self.max_message_delay_seconds
        window = self.redis_visibility_timeout_seconds - self.task_time_limit_seconds - 1
        return max(self.retry_backoff_max_seconds, min(300.0, window))

    @property
    def message_time_limit_floor(self) -> float:
        """The shortest time limit a message may ask for, in seconds."""
        if self.min_message_time_limit_seconds is not None:
            return self.min_message_time_limit_seconds
        return min(5.0, self.task_soft_time_limit_seconds / 2)

    def loan_policy(self) -> LoanPolicy:
        """Loan period, renewal limit and hold window."""
        return LoanPolicy(
            loan_period=timedelta(days=self.loan_period_days),
            renewal_limit=self.loan_renewal_limit,
            hold_window=timedelta(days=self.reservation_hold_days),
        )
