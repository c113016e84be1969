"""A database of one test's own (named after the test database, so it carries the
session's name), migrated to head, dropped afterwards — for checks that judge a whole
database, which the shared test database (planted violations included) cannot pass."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from orderq.schema import upgrade_to_head
from tests.support.database import recreate_empty_database
from tests.support.environment import TEST_DATABASE_URL, direct_url
from worker.adapters.backups import drop_database


@dataclass(frozen=True)
class PrivateDatabase:
    url: str  # as the application reaches it (through the pooler, if any)
    direct: str  # straight to PostgreSQL (admin work, pg_dump, pg_restore)

    @property
    def name(self) -> str:
        return make_url(self.url).database or ""

    def sibling(self, suffix: str) -> PrivateDatabase:
        """Another database name next to this one (not created)."""
        url = make_url(self.url)
        other = url.set(database=f"{url.database}_{suffix}").render_as_string(hide_password=False)
        return PrivateDatabase(other, direct_url(other))


def new_database_url(label: str) -> str:
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_{label}_{uuid.uuid4().hex[:6]}"
    return url.set(database=name).render_as_string(hide_password=False)


@contextmanager
def private_database(label: str, *, migrated: bool = True) -> Iterator[PrivateDatabase]:
    url = new_database_url(label)
    database = PrivateDatabase(url, direct_url(url))
    recreate_empty_database(database.direct)
    try:
        if migrated:
            upgrade_to_head(database.direct)
        yield database
    finally:
        drop_database(database.direct)
