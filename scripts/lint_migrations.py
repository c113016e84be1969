"""Flag migrations that would take locks which stop traffic, before they ship.

    python scripts/lint_migrations.py                  # every revision after the baseline
    python scripts/lint_migrations.py --baseline base  # every revision

Renders the SQL Alembic would run for the revisions newer than the baseline (offline
mode: nothing connects to a database), one transaction per revision as online, and
runs squawk (PyPI `squawk-cli`) over it with the project's rules (.squawk.toml). A
plain CREATE INDEX on a table with traffic, an ALTER that rewrites a table, a new
NOT NULL column without a default, DDL without a lock_timeout … fail the run, naming
the revision (the SQL carries Alembic's "Running upgrade X -> Y" comments).

The baseline is the newest migration already applied in production: those ran, and
linting them again only repeats decisions taken. Move it forward on each release.
Exit code: squawk's (0 clean, 1 findings), 2 if the SQL cannot be rendered.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: the newest migration on main before this linter ran in CI (see the docstring)
BASELINE = "0008"
#: a URL for Alembic's offline mode; nothing connects to it
OFFLINE_URL = "postgresql+psycopg://lint@127.0.0.1:1/lint"


def render_sql(baseline: str, migrations: Path | None = None) -> str:
    """The SQL of `baseline:head` as Alembic's offline mode writes it."""
    from alembic import command

    from orderq.schema import alembic_config

    config = alembic_config(OFFLINE_URL)
    if migrations is not None:
        config.set_main_option("script_location", str(migrations))
    buffer = io.StringIO()
    config.output_buffer = buffer
    revisions = "head" if baseline == "base" else f"{baseline}:head"
    command.upgrade(config, revisions, sql=True)
    return buffer.getvalue()


def squawk_binary() -> str:
    found = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(found).exists():
        raise SystemExit("squawk is not installed: pip install -e '.[test]' (squawk-cli)")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="revision already in production")
    parser.add_argument("--migrations", type=Path, help="another migrations folder (tests)")
    args = parser.parse_args()

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            sql = render_sql(args.baseline, args.migrations)
    except Exception as error:
        print(f"could not render the migrations' SQL: {error}", file=sys.stderr)
        return 2
    if "Running upgrade" not in sql:
        print(f"no migration after {args.baseline}: nothing to lint")
        return 0
    with tempfile.TemporaryDirectory(prefix="orderq-squawk-") as folder:
        path = Path(folder) / f"migrations_after_{args.baseline}.sql"
        path.write_text(sql)
        done = subprocess.run(
            [squawk_binary(), "--config", str(ROOT / ".squawk.toml"), str(path)],
            capture_output=True,
            text=True,
        )
    print(done.stdout + done.stderr, end="")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
