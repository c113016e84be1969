"""The worker's engine and session factory, built from its settings."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from producers.database import build_engine
from worker.adapters.orm import start_mappers
from worker.adapters.pool_metrics import observed_queue_pool
from worker.adapters.slow_statements import install_slow_statement_log
from worker.settings import WorkerSettings


def build_worker_engine(
    settings: WorkerSettings, pool_size: int | None = None, max_overflow: int | None = None
) -> Engine:
    """An engine with the worker's pool (or `pool_size` + `max_overflow` connections,
    the same timeouts), reporting its pressure as metrics, and the slow-statement log."""
    overflow = settings.pool_max_overflow if max_overflow is None else max_overflow
    engine = build_engine(
        settings,
        poolclass=observed_queue_pool(settings.application_name, overflow),
        pool_size=pool_size or settings.pool_size,
        max_overflow=overflow,
        pool_timeout=settings.pool_timeout_seconds,
        pool_recycle=settings.pool_recycle_seconds,
        pool_pre_ping=settings.pool_pre_ping,
    )
    install_slow_statement_log(engine, settings.slow_statement_ms)
    return engine


def build_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for the loan repositories (the domain classes are mapped once)."""
    start_mappers()
    # expire_on_commit=False: outcomes are read after commit without another round trip.
    return sessionmaker(bind=engine, expire_on_commit=False)
