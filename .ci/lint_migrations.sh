#!/usr/bin/env bash
# New migrations must not take locks that stop traffic: squawk over the SQL Alembic
# would run for every revision after the baseline (scripts/lint_migrations.py).
set -euo pipefail
cd "$(dirname "$0")/.."
NO_COLOR=1 python scripts/lint_migrations.py
