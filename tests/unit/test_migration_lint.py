"""The migration linter (squawk over the SQL Alembic would run) passes the migrations
after the baseline, and fails a new one that would block traffic."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from orderq.schema import head_revisions, migrations_folder

ROOT = Path(__file__).resolve().parents[2]
BLOCKING = '''"""a plain index on orders: blocks every write to orders while it builds"""

from alembic import op

revision = "0099"
down_revision = {head!r}


def upgrade() -> None:
    op.create_index("ix_orders_customer_ref", "orders", ["customer_ref"])


def downgrade() -> None:
    op.drop_index("ix_orders_customer_ref", table_name="orders")
'''


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lint_migrations.py"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,
    )


def test_the_new_migrations_take_no_blocking_locks():
    done = lint()

    assert done.returncode == 0, done.stdout + done.stderr


def test_a_plain_create_index_on_a_busy_table_is_flagged(tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_folder(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    (head,) = head_revisions()
    (folder / "versions" / "2026_12_01_0099_blocking.py").write_text(BLOCKING.format(head=head))

    done = lint("--migrations", str(folder))

    assert done.returncode == 1
    assert "require-concurrent-index-creation" in done.stdout
    assert "CREATE INDEX ix_orders_customer_ref ON orders" in done.stdout
