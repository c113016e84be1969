"""The worker's process-wide engine and session factory, created on first use."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from producers.database import build_engine
from producers.settings import get_settings
from worker.adapters.orm import start_mappers
from worker.adapters.slow_statements import install_slow_statement_log


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The engine for this process (after a fork, call `forget_inherited_connections`)."""
    settings = get_settings()
    engine = build_engine(settings)
    install_slow_statement_log(engine, settings.slow_statement_ms)
    return engine


@lru_cache(maxsize=1)
def get_session_factory() -> sessionmaker[Session]:
    start_mappers()
    # expire_on_commit=False: outcomes are read after commit without another round trip.
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def forget_inherited_connections() -> None:
    """Drop pooled connections a forked child inherited without closing the parent's."""
    if get_engine.cache_info().currsize:
        get_engine().dispose(close=False)
