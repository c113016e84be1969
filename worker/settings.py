"""Everything a worker, the maintenance jobs and beat can be told.

Extends the producer's settings (broker, database, queue), so one object configures a
whole worker process. Plain values: reading them starts nothing.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

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

    # -- testing only: deterministic fault injection, see worker/service/failpoints.py ----
    failpoints: str = ""

    @model_validator(mode="after")
    def _visibility_outlasts_a_task(self) -> WorkerSettings:
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
