"""The `requires_extension` marker: skip where the test database lacks an extension."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import pytest
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

from orderq.embedded.capabilities import explain_missing, extension_status
from producers.database import normalize_database_url


@cache
def _missing(url: str, names: tuple[str, ...]) -> tuple[str, ...]:
    # Any database of the server answers for the server's extensions.
    server = make_url(normalize_database_url(url)).set(database="postgres")
    engine = create_engine(server, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return tuple(n for n in names if extension_status(connection, n) == "missing")
    finally:
        engine.dispose()


def skip_without_extensions(url: str, names: Iterable[str]) -> None:
    """pytest.skip with the reason a user would need, if any extension is missing."""
    missing = _missing(url, tuple(names))
    if missing:
        pytest.skip(
            "; ".join(explain_missing(name, "this test", url) for name in missing),
        )
