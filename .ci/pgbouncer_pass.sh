#!/usr/bin/env bash
# The end-to-end and fault subsets again, with the test database behind PgBouncer in
# transaction pooling (Debian's pgbouncer; a private instance on a free port with a
# generated configuration, removed afterwards), admin work straight to PostgreSQL.
# Called by .ci/run after the main pass, in its virtualenv, from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "installing pgbouncer (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null; }
fi
# The Debian package enables a system pgbouncer on 6432; ours does not need it.
(pgbouncer --version 2>/dev/null || /usr/sbin/pgbouncer --version) | head -n 1

export PATH="$PATH:/usr/sbin"
# the pytest arguments are this script's (default: the end-to-end and fault subsets)
if [ $# -eq 0 ]; then set -- tests/e2e tests/faults; fi
python -m tests.support.pgbouncer -- pytest "$@"
