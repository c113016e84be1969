#!/usr/bin/env bash
# The second CI lane (run by .ci/run beside the main test run; runnable alone, in the
# virtualenv, from the repository root). Nothing here shares state with the main lane:
#
#   1. the production install: the wheel without extras, against the real servers
#      (database orderq_prod_ci, Redis db 14);
#   2. the embedded fallback: the configured servers unreachable, so the suite starts
#      embedded PostgreSQL and Redis of its own — on the tests that exercise the
#      servers' behaviour (integration, and the CLI/orders/loans/search end to end);
#   3. the end-to-end and fault subsets through PgBouncer in transaction pooling
#      (database orderq_test_pgbouncer, Redis db 13), leaving out the tests that do not
#      reach the database through a worker, the API or maintenance: the stack and the
#      embedded servers (up, demo, restarts), Flower, the production path, the docs'
#      transcripts, and the broker-level message guard (it never gets to the database).
set -uo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
status=0
stage() {  # stage TITLE COMMAND...
  local title=$1
  shift
  echo "== [second lane] $title"
  if "$@"; then
    echo "   ok ($((SECONDS - started)) s)"
  else
    echo "   FAILED ($((SECONDS - started)) s)"
    status=1
  fi
}

stage "production install: the wheel without extras, run against the real servers" \
  bash .ci/production_install.sh

stage "the embedded fallback: configured servers unreachable" \
  env ORDERQ_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:1/unreachable \
      ORDERQ_TEST_BROKER_URL=redis://127.0.0.1:1/0 \
  pytest -q tests/integration tests/e2e/test_cli.py tests/e2e/test_search_cli.py \
    tests/e2e/test_orders_through_worker.py tests/e2e/test_loans_through_worker.py

stage "the end-to-end and fault subsets through PgBouncer (transaction pooling)" \
  env ORDERQ_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/orderq_test_pgbouncer \
      ORDERQ_TEST_BROKER_URL=redis://127.0.0.1:6379/13 \
  bash .ci/pgbouncer_pass.sh -q tests/e2e tests/faults \
    --ignore=tests/e2e/test_up.py --ignore=tests/e2e/test_up_restarts.py \
    --ignore=tests/e2e/test_supervisor_restarts.py --ignore=tests/e2e/test_demo.py \
    --ignore=tests/e2e/test_flower.py --ignore=tests/e2e/test_production_path.py \
    --ignore=tests/e2e/test_docs_transcripts.py --ignore=tests/e2e/test_rabbitmq.py \
    --ignore=tests/e2e/http/test_node_client.py \
    --ignore=tests/faults/test_malformed_messages.py \
    --ignore=tests/faults/test_guard_properties.py

exit $status
