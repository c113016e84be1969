"""What a read can refuse: a bad query or page size, a cursor it did not issue."""

from __future__ import annotations


class ReadError(ValueError):
    """Bad input to a read (CLI: one line, exit 2; HTTP: 400). Never a server fault."""


class InvalidQuery(ReadError):
    """An empty or oversized query, a page size out of bounds, an unknown filter value."""


class InvalidCursor(ReadError):
    """A cursor that is malformed, was altered, or belongs to another listing."""
