"""The worker's engine and session factory, built from its settings."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from producers.database import build_engine
from worker.adapters.orm import start_mappers
from worker.adapters.pool_metrics import observed_queue_pool
from worker.adapters.slow_statements import install_slow_statement_log
from worker.settings import WorkerSettings


def build_worker_engine(settings: WorkerSettings) -> Engine:
    """An engine with the worker's pool (reporting its pressure as metrics) and the
    slow-statement log."""
    engine = build_engine(
        settings,
        poolclass=observed_queue_pool(settings.application_name, settings.pool_max_overflow),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
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
