"""Maps the plain loan domain classes onto the tables (SQLAlchemy imperative mapping).

The domain never imports SQLAlchemy; this module teaches SQLAlchemy about the domain.
Members, works, copies and loans carry a `version` column as SQLAlchemy's
`version_id_col`, so an update from a stale read raises `StaleDataError` instead of
overwriting silently. (Orders and stock, the hottest paths, are loaded and saved with
hand-written SQL instead: see repositories.py.)
"""

from __future__ import annotations

from sqlalchemy.orm import registry

from worker.adapters import tables
from worker.domain.loans import Copy, Loan, Member, Reservation, Work

mapper_registry = registry(metadata=tables.metadata)
_started = False


def start_mappers() -> None:
    """Map the domain classes once per process (idempotent)."""
    global _started
    if _started:
        return
    _started = True
    # Reservations change only under their work's (or held copy's) row lock, so they
    # need no version of their own.
    # The generated full-text document of a work is the database's business: never
    # loaded, never written by the ORM.
    for cls, table, skipped in (
        (Member, tables.members, ()),
        (Work, tables.works, ("search_vector",)),
        (Copy, tables.copies, ()),
        (Loan, tables.loans, ()),
    ):
        mapper_registry.map_imperatively(
            cls, table, version_id_col=table.c.version, exclude_properties=skipped
        )
    mapper_registry.map_imperatively(Reservation, tables.reservations)
