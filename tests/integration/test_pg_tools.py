"""pg_dump / pg_restore are picked by the server's major version, and bounded in time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from worker.adapters.pg_tools import (
    PgTool,
    PgToolError,
    PgToolMismatch,
    find_tool,
    run_tool,
    server_major,
)


def configured(settings) -> list[Path]:
    """ORDERQ_PG_BIN_DIR, as the commands use it (set for an embedded server)."""
    return [settings.pg_bin_dir] if settings.pg_bin_dir else []


def test_the_tool_matches_the_servers_major_version(engine, settings):
    major = server_major(engine)

    tool = find_tool("pg_dump", major, configured(settings))

    assert tool.major == major and not tool.note


def test_an_older_server_gets_a_newer_tool_with_a_note(settings):
    # no machine here has client tools of PostgreSQL 9: the closest newer one is used
    tool = find_tool("pg_restore", 9, configured(settings))

    assert tool.major > 9 and "for a PostgreSQL 9 server" in tool.note


def test_a_newer_server_than_any_tool_is_refused_naming_what_to_install():
    with pytest.raises(PgToolMismatch, match="postgresql-client-99"):
        find_tool("pg_dump", 99)


def test_the_embedded_servers_own_tools_are_found_first(tmp_path):
    from orderq.embedded.postgres import binaries_dir

    embedded = binaries_dir()
    if embedded is None:
        pytest.skip("the embedded extra is not installed")
    from worker.adapters.pg_tools import tool_major

    version = tool_major(embedded / "pg_restore")
    assert version is not None
    assert find_tool("pg_restore", version, [embedded]).path.parent == embedded


def test_a_tool_that_hangs_is_killed_at_its_timeout():
    started = time.monotonic()
    with pytest.raises(PgToolError, match="did not finish within 1s"):
        run_tool(
            PgTool("hang", Path("/bin/sh"), 0),
            ["-c", "sleep 30", "sh"],
            "postgresql://x@h/d",
            timeout=1,
        )
    assert time.monotonic() - started < 10
