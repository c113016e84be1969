"""Regenerate the command transcripts in the docs, so they cannot drift from the code.

A doc marks each transcript it shows:

    <!-- transcript:loans-desk -->
    ```console
    $ orderq publish checkout --key out-1 --member M-1001 --barcode 31234000123
    …
    ```
    <!-- /transcript -->

This script runs the commands of every transcript for real — the `orderq` command of
this checkout, in a shell, against a throwaway database it creates next to the one in
DATABASE_URL (and drops afterwards), the broker in CELERY_BROKER_URL, and a worker of
its own on a private queue — and writes what they printed between the markers. Queue
names are shown as the defaults; the `database … · broker …` line every command
prints on stderr is left out.

    DATABASE_URL=postgresql://… CELERY_BROKER_URL=redis://… \\
        python scripts/docs_transcripts.py            # rewrite the docs
    … python scripts/docs_transcripts.py --check      # exit 1 if a doc is stale

`--check` (and tests/e2e/test_docs_transcripts.py) compares after `normalise`: times,
dates, durations and host names may differ from run to run, nothing else may. The
demo, whose figures depend on timing, is compared by its shape: titles, headings and
row labels. `db report` is regenerated but not compared: its sections depend on the
server (sizes, statistics, whether pg_stat_statements is preloaded).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WIDTH = 100  # terminal columns the transcripts are rendered for
SHOWN_DATABASE_URL = "postgresql+psycopg://orderq@db.internal:5432/orderq"
SHOWN_BROKER_URL = "redis://redis.internal:6379/0"

_BLOCK = re.compile(
    r"(?P<open><!-- transcript:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /transcript -->)",
    re.DOTALL,
)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_ELAPSED = re.compile(r"\b\d+:\d{2}:\d{2}\b")
_HOST = re.compile(r"@[\w.-]+")
#: a keyset cursor (orderq/read/cursors.py): its payload holds the last row's time
_CURSOR = re.compile(r"\b[A-Za-z0-9_-]{8,1000}\.[A-Za-z0-9_-]{22}\b")
_SERVERS_LINE = re.compile(r"^(database .* · broker .*|starting the embedded .*)$")


# -- what a transcript is ------------------------------------------------------------------


@dataclass
class Block:
    """One transcript: the text shown in a doc, and how to compare it."""

    name: str
    fence: str = "console"
    shape_only: bool = False  # figures depend on timing: compare titles and labels only
    checked: bool = True  # False: depends on the server's build and settings, not compared
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


@dataclass
class Run:
    """The servers, queue and folder one scenario runs against."""

    orderq_env: dict[str, str]
    workdir: Path
    database_url: str
    shown_as: dict[str, str]  # this run's queues, database, URLs -> what the docs show
    blocks: dict[str, Block] = field(default_factory=dict)
    current: Block | None = None
    workers: Workers | None = None

    @contextmanager
    def block(self, name: str, **options: object) -> Iterator[Block]:
        """Lines shown while inside go to the transcript `name`."""
        block = self.blocks.setdefault(name, Block(name, **options))  # type: ignore[arg-type]
        self.current = block
        try:
            yield block
        finally:
            self.current = None

    def sh(
        self, command: str, *, show: bool = True, output: bool = True, status: bool = False
    ) -> str:
        """Run a shell command line (with `orderq` on the PATH); show it and its output
        (and its exit status, as `(exit status N)`, if `status`)."""
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=self.workdir,
            env=self.orderq_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=180,
            check=False,
        )
        text = result.stdout.decode(errors="replace")
        for private in sorted(self.shown_as, key=len, reverse=True):
            text = text.replace(private, self.shown_as[private])
        lines = [line.rstrip() for line in text.splitlines() if not _SERVERS_LINE.match(line)]
        if show:
            assert self.current is not None, "a shown command needs a block"
            self.current.lines.append(f"$ {command}")
            if output:
                self.current.lines.extend(lines)
            if status:
                self.current.lines.append(f"(exit status {result.returncode})")
        return "\n".join(lines)

    def say(self, line: str) -> None:
        """A line of the transcript that is not a command (e.g. a comment)."""
        assert self.current is not None
        self.current.lines.append(line)

    def write(self, name: str, text: str) -> None:
        (self.workdir / name).write_text(text)

    def write_bytes(self, name: str, data: bytes) -> None:
        (self.workdir / name).write_bytes(data)

    def publish(self, *messages: dict, wait: float = 30) -> None:
        """Publish commands without showing them, each after the one before has its
        outcome (set-up steps: in this process, no `orderq` command started)."""
        from orderq.settings import Settings
        from producers.commands import parse_command
        from producers.database import build_engine
        from producers.outcomes import wait_for
        from producers.publisher import Publisher

        settings = Settings(
            database_url=self.database_url,
            broker_url=self.orderq_env["CELERY_BROKER_URL"],
            command_queue=self.orderq_env["ORDERQ_COMMAND_QUEUE"],
        )
        engine = build_engine(settings, pool_size=1, max_overflow=0)
        try:
            with Publisher(settings) as publisher:
                for message in messages:
                    publisher.publish(parse_command(message))
                    if not wait_for(engine, message["key"], wait).is_terminal:
                        raise TimeoutError(f"no outcome for {message['key']} in {wait}s")
        finally:
            engine.dispose()

    def sql(self, statement: str, params: dict | None = None) -> list[tuple]:
        """Run SQL on this scenario's database (not shown); the rows, if any."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.database_url)
        try:
            with engine.begin() as connection:
                result = connection.execute(text(statement), params or {})
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def table(self, statement: str) -> None:
        """Show the rows of a query, laid out like psql does."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                result = connection.execute(text(statement))
                columns, rows = list(result.keys()), [list(row) for row in result]
        finally:
            engine.dispose()
        cells = [["" if value is None else str(value) for value in row] for row in rows]
        widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
        assert self.current is not None
        lines = self.current.lines
        lines.append(" " + " | ".join(map(str.center, columns, widths)).rstrip())
        lines.append("-" + "-+-".join("-" * w for w in widths) + "-")
        numeric = [all(r[i].isdigit() for r in cells if r[i]) for i in range(len(columns))]
        aligns = [str.rjust if n else str.ljust for n in numeric]
        lines.extend(
            " " + " | ".join(a(c, w) for a, c, w in zip(aligns, row, widths, strict=True)).rstrip()
            for row in cells
        )

    def restart_workers(self, env: dict[str, str] | None = None) -> None:
        """Stop this scenario's worker and start a new one with `env` added."""
        assert self.workers is not None
        self.workers.stop()
        self.workers = Workers(self, env or {})
        self.workers.start()


class Workers:
    """The scenario's command worker (one process: commands run in publishing order),
    and, if asked, a maintenance worker."""

    def __init__(self, run: Run, env: dict[str, str], maintenance: bool = False) -> None:
        from orderq.cli.supervisor import Child, Supervisor

        orderq = run.orderq_env["ORDERQ_BIN"]
        env = {**run.orderq_env, **env}
        children = [Child("worker", [orderq, "worker", "-c", "1"], " ready.", env, quiet=True)]
        if maintenance:
            children.append(
                Child("maintenance", [orderq, "maintenance", "worker"], " ready.", env, quiet=True)
            )
        self.supervisor = Supervisor(children, cwd=str(run.workdir))

    def start(self) -> None:
        self.supervisor.start()
        exited = self.supervisor.wait_ready(120)
        if exited is not None:
            raise RuntimeError(f"{exited.name} exited:\n" + "\n".join(exited.output[-20:]))

    def stop(self) -> None:
        self.supervisor.stop()


# -- the scenarios: each runs on a fresh database, in order, and fills named blocks --------

Scenario = Callable[[Run], None]


@dataclass(frozen=True)
class ScenarioInfo:
    run: Scenario
    maintenance_worker: bool = False
    width: int = WIDTH  # wide tables (the demo, db report) get more columns: no wrapping


SCENARIOS: dict[str, ScenarioInfo] = {}


def scenario(
    *, maintenance_worker: bool = False, width: int = WIDTH
) -> Callable[[Scenario], Scenario]:
    def register(function: Scenario) -> Scenario:
        SCENARIOS[function.__name__.replace("_", "-")] = ScenarioInfo(
            function, maintenance_worker, width
        )
        return function

    return register


def _status(run: Run, key: str, *flags: str) -> None:
    run.sh(" ".join(["orderq status", key, "--wait 10", *flags]))


@scenario()
def first_steps(run: Run) -> None:
    """README and quickstart: the first commands a new user types."""
    with run.block("readme-session"):
        run.sh('orderq publish upsert-product --key p-1 --sku MUG-1 --name "Mug" --price 12.50')
        run.sh("orderq publish restock --key r-1 --sku MUG-1 --qty 5")
        run.sh("orderq publish place-order --key web-1001 --customer alice --line MUG-1:2")
        _status(run, "web-1001", "--json")
    with run.block("quickstart-migrate"):
        run.sh("orderq migrate")
    with run.block("quickstart-session"):
        run.sh(
            'orderq publish upsert-product --key first-mug --sku MUG-2 --name "Blue mug"'
            " --price 12.50"
        )
        run.sh("orderq publish restock --key mugs-arrive --sku MUG-2 --qty 3")
        run.sh("orderq publish place-order --key web-1 --customer alice --line MUG-2:2")
        run.sh(
            "orderq publish place-order --key web-1 --customer alice --line MUG-2:2"
            "   # a retry: same outcome"
        )
        _status(run, "web-1")
        run.sh("orderq publish place-order --key web-2 --customer bob --line MUG-2:2")
        _status(run, "web-2")
    with run.block("cli-orders"):
        run.sh("orderq orders list")
        run.sh("orderq orders list --status placed --limit 1")
        run.sh("orderq orders show ORD-000002")
        run.sh("orderq orders show ORD-000009", status=True)


@scenario()
def command_line(run: Run) -> None:
    """docs/cli.md: mistakes, exit statuses, files in other encodings."""
    with run.block("cli-mistakes"):
        for command in (
            "publish restock --key r-9 --sku MUG-1 --qty lots",
            "publish restock --key r-9 --sku MUG-1 --qty 2 --colour red",
            "publish restock --key r-9 --sku MUG-1",
            "publish upsert-product --key p-9 --sku MUG-1 --name Mug --price NaN",
            "publish upsert-product --key p-9 --sku MUG-1 --name Mug --price 250000000",
            "publish ship-order --key s-9 --order 42",
            "dead-letters show no-such-key",
            "status no-such-key",
        ):
            run.sh(f"orderq {command}", status=True)
    with run.block("cli-failures"):
        run.sh("ORDERQ_POOL_SIZE=lots orderq status web-1", status=True)
        run.sh("CELERY_BROKER_URL= orderq status web-1", status=True)
        run.sh(
            "DATABASE_URL=postgresql://postgres@127.0.0.1:1/orderq orderq orders list",
            status=True,
        )
    tea = [
        {"type": "upsert_product", "key": "tea-1", "sku": "TEA-1", "name": "Thé"},
        {"type": "restock_product", "key": "tea-2", "sku": "TEA-1", "qty": 12},
    ]
    tea[0]["price_cents"] = 450
    # as PowerShell's `>` or Notepad's "Unicode" writes it: UTF-16 with a byte-order mark
    run.write_bytes(
        "windows.jsonl",
        "".join(json.dumps(line, ensure_ascii=False) + "\r\n" for line in tea).encode("utf-16"),
    )
    renamed = {"type": "upsert_product", "key": "tea-4", "sku": "TEA-1", "name": "Thé noir"}
    more = [
        {"type": "restock_product", "key": "tea-3", "sku": "TEA-1", "qty": 1},
        {**renamed, "price_cents": 450},  # this line saved by an editor set to Latin-1
        {"type": "restock_product", "key": "tea-5", "sku": "TEA-1", "qty": 1},
    ]
    run.write_bytes(
        "one-latin1-line.jsonl",
        b"".join(
            json.dumps(line, ensure_ascii=False).encode("latin-1" if n == 1 else "utf-8") + b"\n"
            for n, line in enumerate(more)
        ),
    )
    with run.block("cli-publish-file"):
        run.sh("orderq publish-file windows.jsonl")
        run.sh("orderq publish-file one-latin1-line.jsonl", status=True)
        run.sh("orderq publish-file - < one-latin1-line.jsonl", status=True)


@scenario()
def loans_desk(run: Run) -> None:
    """docs/loans.md: a session at the desk."""
    with run.block("loans-desk"):
        run.sh(
            'orderq publish register-member --key reg-ada --member M-1001 --name "Ada Lovelace"'
            " --loan-limit 1"
        )
        run.sh('orderq publish register-member --key reg-bob --member M-1002 --name "Bob Dylan"')
        run.sh(
            'orderq publish add-work --key work-dune --work W-42 --title "Dune"'
            ' --author "Frank Herbert"'
        )
        run.sh("orderq publish add-copy --key copy-dune-1 --work W-42 --barcode 31234000123")
        _status(run, "copy-dune-1")
        for line in (
            ("out-1", "checkout --key out-1 --member M-1001 --barcode 31234000123"),
            ("out-2", "checkout --key out-2 --member M-1002 --barcode 31234000123"),
            ("res-bob", "reserve --key res-bob --member M-1002 --work W-42"),
            ("renew-1", "renew --key renew-1 --member M-1001 --barcode 31234000123"),
            ("ret-1", "return --key ret-1 --barcode 31234000123"),
            ("out-3", "checkout --key out-3 --member M-1001 --barcode 31234000123"),
            ("out-4", "checkout --key out-4 --member M-1002 --barcode 31234000123"),
        ):
            key, arguments = line
            run.sh(f"orderq publish {arguments}", output=key == "out-1")
            _status(run, key)
    with run.block("loans-replay"):
        run.sh("orderq publish checkout --key out-4 --member M-1002 --barcode 31234000123")
        run.sh("orderq status out-4 --json")
    run.publish(  # two more copies; Ada borrows one (her limit is 1)
        {"type": "add_copy", "key": "copy-dune-8", "work": "W-42", "barcode": "31234000998"},
        {"type": "add_copy", "key": "copy-dune-9", "work": "W-42", "barcode": "31234000999"},
        {"type": "checkout_copy", "key": "out-8", "member": "M-1001", "barcode": "31234000998"},
    )
    with run.block("loans-limit"):
        run.sh(
            "orderq publish checkout --key out-9 --member M-1001 --barcode 31234000999",
            output=False,
        )
        _status(run, "out-9")
        run.sh(
            "orderq publish register-member --key suspend-cy --member M-1003"
            ' --name "Cy Twombly" --status suspended',
            output=False,
        )
        run.sh("orderq publish reserve --key res-cy-2 --member M-1003 --work W-42", output=False)
        _status(run, "res-cy-2")
    run.write(
        "library.jsonl",
        '{"type": "add_copy", "key": "copy-dune-2", "work": "W-42", "barcode": "31234000124"}\n'
        '{"type": "checkout_copy", "key": "out-5", "member": "M-1002", "barcode": "31234000124"}\n'
        '{"type": "register_member", "key": "reg-cy", "member": "M-1003", "name": "Cy Twombly",'
        ' "loan_limit": 3}\n'
        '{"type": "place_reservation", "key": "res-cy", "member": "M-1003", "work": "W-42"}\n'
        '{"type": "checkout_copy", "key": "out-6", "member": "M 1001"}\n'
        '{"type": "renew_loan", "key": "renew-9", "barcode": "31234000124"}\n',
    )
    with run.block("loans-file"):
        run.sh("cat library.jsonl")
        run.sh("orderq publish-file library.jsonl", status=True)
    with run.block("loans-refusals"):
        for command in (
            'publish checkout --key out-10 --member "M 1001" --barcode 31234000125',
            "publish register-member --key reg-x --member M-9 --name X --loan-limit lots",
            "publish register-member --key reg-x --member M-9 --name X --status frozen",
            'publish add-work --key w-x --work W-43 --title ""',
        ):
            run.sh(f"orderq {command}", status=True)
    with run.block("loans-history", fence="text"):
        run.table(
            "SELECT l.id, m.member_number, c.barcode, l.checked_out_at::date AS checked_out_at,"
            " l.due_at::date AS due_at, l.returned_at::date AS returned_at, l.renewals, l.version"
            " FROM loans l JOIN members m ON m.id = l.member_id JOIN copies c ON c.id = l.copy_id"
            " ORDER BY l.id"
        )


@scenario()
def loans_overdue(run: Run) -> None:
    """docs/loans.md: holds running out, a loan going overdue (time moved by SQL)."""
    run.publish(
        {"type": "register_member", "key": "reg-ada", "member": "M-1001", "name": "Ada"},
        {"type": "register_member", "key": "reg-bob", "member": "M-1002", "name": "Bob"},
        {"type": "register_member", "key": "reg-cy", "member": "M-1003", "name": "Cy"},
        {"type": "add_work", "key": "work-dune", "work": "W-42", "title": "Dune"},
        {"type": "add_work", "key": "work-emma", "work": "W-7", "title": "Emma"},
        {"type": "add_copy", "key": "copy-dune", "work": "W-42", "barcode": "31234000123"},
        {"type": "add_copy", "key": "copy-emma", "work": "W-7", "barcode": "31234000200"},
        {"type": "place_reservation", "key": "res-ada", "member": "M-1001", "work": "W-42"},
        {"type": "place_reservation", "key": "res-bob", "member": "M-1002", "work": "W-42"},
        {"type": "checkout_copy", "key": "out-cy", "member": "M-1003", "barcode": "31234000200"},
    )
    # a week and more later: Ada's hold ran out, Cy's loan is four days past due
    run.sql(
        "UPDATE reservations SET queued_at = queued_at - interval '8 days',"
        " ready_until = ready_until - interval '8 days' WHERE status = 'ready'"
    )
    run.sql(
        "UPDATE loans SET checked_out_at = checked_out_at - interval '25 days',"
        " due_at = due_at - interval '25 days'"
    )
    with run.block("loans-overdue"):
        run.sh("orderq maintenance run expire_ready_reservations")
        run.sh("orderq maintenance run mark_overdue_loans --json")
        run.sh("orderq maintenance run mark_overdue_loans --json")
        [(expiry,)] = run.sql(
            "SELECT idempotency_key FROM command_ledger WHERE idempotency_key LIKE 'expire-res%'"
        )
        [(overdue,)] = run.sql(
            "SELECT idempotency_key FROM command_ledger WHERE idempotency_key LIKE 'overdue:%'"
        )
        run.sh(f"orderq status {expiry}")
        run.sh(f"orderq status {overdue}")
        run.sh(
            "orderq publish checkout --key out-ada --member M-1001 --barcode 31234000123",
            output=False,
        )
        _status(run, "out-ada")
        run.sh(
            "orderq publish renew --key renew-cy --member M-1003 --barcode 31234000200",
            output=False,
        )
        _status(run, "renew-cy")
        run.sh("orderq publish return --key ret-cy --barcode 31234000200", output=False)
        _status(run, "ret-cy")
    ready_until = expiry.split(":", 2)[2]
    due_date = overdue.split(":", 2)[2]
    run.write(
        "maint.jsonl",
        f'{{"type": "expire_reservation", "key": "manual-expire-1", "reservation_id": 1,'
        f' "ready_until": "{ready_until}"}}\n'
        f'{{"type": "mark_loan_overdue", "key": "manual-overdue-1", "loan_id": 1,'
        f' "due_date": "{due_date}"}}\n'
        '{"type": "mark_loan_overdue", "key": "manual-overdue-2", "loan_id": 1,'
        ' "due_date": "last week"}\n',
    )
    with run.block("loans-overdue-by-hand"):
        run.sh("cat maint.jsonl")
        run.sh("orderq publish-file maint.jsonl")
        _status(run, "manual-expire-1")
        _status(run, "manual-overdue-1")
    with run.block("loans-overdue-rows", fence="text"):
        run.table(
            "SELECT l.id, m.member_number, c.barcode, l.due_at::date AS due,"
            " l.overdue_at::date AS overdue, l.returned_at::date AS returned"
            " FROM loans l JOIN members m ON m.id = l.member_id JOIN copies c ON c.id = l.copy_id"
            " ORDER BY l.id"
        )
        run.say("")
        run.table(
            "SELECT r.id, m.member_number, r.status, c.barcode, r.ready_until::date AS ready_until"
            " FROM reservations r JOIN members m ON m.id = r.member_id"
            " LEFT JOIN copies c ON c.id = r.copy_id ORDER BY r.id"
        )


@scenario()
def dead_letters(run: Run) -> None:
    """docs/reliability.md: two orders that keep failing, replayed and discarded."""
    run.publish(
        {"type": "upsert_product", "key": "p-1", "sku": "MUG-1", "name": "Mug", "price_cents": 900},
        {"type": "restock_product", "key": "r-1", "sku": "MUG-1", "qty": 10},
    )
    # every commit of a key starting web-4 fails: three attempts, then a dead letter
    run.restart_workers(
        {"ORDERQ_FAILPOINTS": "before_commit=raise@web-4", "ORDERQ_MAX_ATTEMPTS": "3"}
    )
    run.publish(
        *(
            {"type": "place_order", "key": key, "customer_ref": customer, "lines": line}
            for key, customer in (("web-42", "c-7"), ("web-43", "c-8"))
            for line in ([{"sku": "MUG-1", "qty": 2}],)
        ),
        wait=60,
    )
    with run.block("reliability-dead-letters"):
        run.sh("orderq status web-42 --wait 30")
        run.sh("orderq dead-letters list")
        run.sh("orderq dead-letters show web-42")
    run.restart_workers()  # the cause fixed: no failpoint any more
    with run.block("reliability-replay"):
        run.sh("orderq dead-letters replay web-42 --wait 10")
        run.sh("orderq dead-letters replay web-42", status=True)
    with run.block("reliability-discard"):
        run.sh("orderq dead-letters discard web-43", status=True)
        run.sh(
            'orderq dead-letters discard web-43 --reason "customer ordered again by phone'
            ' (web-44)" --by alice'
        )
        run.sh("orderq status web-43")
        run.sh("orderq dead-letters replay web-43", status=True)
        run.sh("orderq dead-letters show nope", status=True)


@scenario(maintenance_worker=True, width=160)
def operations(run: Run) -> None:
    """docs/operations.md: the health check, Flower's refusal, the database report."""
    with run.block("operations-health"):
        run.sh("orderq health")
    with run.block("operations-flower"):
        run.sh("orderq flower", status=True)
    run.publish(
        {"type": "upsert_product", "key": "p-1", "sku": "MUG-1", "name": "Mug", "price_cents": 900},
        {"type": "restock_product", "key": "r-1", "sku": "MUG-1", "qty": 50},
        *(
            {"type": "place_order", "key": f"web-{n}", "customer_ref": "c", "lines": line}
            for n in range(1, 21)
            for line in ([{"sku": "MUG-1", "qty": 1}],)
        ),
    )
    # which sections it has depends on the server (pg_stat_statements preloaded or not)
    with run.block("operations-db-report", checked=False):
        run.sh("orderq db report")


@scenario(width=160)
def demo(run: Run) -> None:
    """docs/quickstart.md: what `orderq demo` prints (figures differ run to run)."""
    with run.block("quickstart-demo", shape_only=True):
        run.sh("orderq demo")


# -- running scenarios ----------------------------------------------------------------------


def _orderq_bin() -> str:
    found = Path(sys.executable).with_name("orderq")
    return str(found) if found.exists() else (shutil.which("orderq") or "orderq")


@contextmanager
def scratch_run(database_url: str, broker_url: str, width: int = WIDTH) -> Iterator[Run]:
    """A fresh database (migrated), private queues and a work folder; all removed after."""
    from sqlalchemy.engine import make_url

    from orderq.schema import ensure_database_exists, upgrade_to_head
    from producers.database import describe_url, normalize_database_url

    tag = secrets.token_hex(4)
    base = make_url(normalize_database_url(database_url))
    scratch = base.set(database=f"{base.database}_docs_{tag}").render_as_string(hide_password=False)
    queues = {
        f"docs-{tag}.commands": "orderq.commands",
        f"docs-{tag}.maintenance": "orderq.maintenance",
    }
    # the servers differ from machine to machine: the docs show the same ones everywhere
    shown_as = {
        **queues,
        scratch: SHOWN_DATABASE_URL,
        describe_url(scratch): SHOWN_DATABASE_URL,
        broker_url: SHOWN_BROKER_URL,
        describe_url(broker_url): SHOWN_BROKER_URL,
        make_url(scratch).database: "orderq",
    }
    workdir = Path(tempfile.mkdtemp(prefix="orderq-docs-"))
    orderq = _orderq_bin()
    env = {
        **os.environ,
        "PATH": f"{Path(orderq).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ORDERQ_BIN": orderq,
        "DATABASE_URL": scratch,
        "CELERY_BROKER_URL": broker_url,
        "ORDERQ_COMMAND_QUEUE": f"docs-{tag}.commands",
        "ORDERQ_MAINTENANCE_QUEUE": f"docs-{tag}.maintenance",
        "ORDERQ_DATA_DIR": str(workdir / "data"),
        "COLUMNS": str(width),
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
    }
    for name in ("FLOWER_BASIC_AUTH", "ORDERQ_FAILPOINTS", "ORDERQ_DEV_MODE", "NO_COLOR"):
        env.pop(name, None)
    try:
        ensure_database_exists(scratch)
        upgrade_to_head(scratch)
        yield Run(env, workdir, scratch, shown_as)
    finally:
        _drop_database(scratch)
        _delete_queues(broker_url, list(queues))
        shutil.rmtree(workdir, ignore_errors=True)


def _drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _delete_queues(broker_url: str, names: list[str]) -> None:
    """Delete the private queues, and on Redis the binding keys kombu keeps beside them."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for name in names:
            with contextlib.suppress(Exception):  # never declared: nothing to delete
                channel.queue_delete(name)
        client = getattr(channel, "client", None)  # the Redis transport's client
        if client is not None:
            for name in names:
                client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")


def render(names: list[str], database_url: str, broker_url: str) -> dict[str, Block]:
    """Run the scenarios `names` (each on its own scratch database); their blocks."""
    blocks: dict[str, Block] = {}
    for name in names:
        info = SCENARIOS[name]
        with scratch_run(database_url, broker_url, info.width) as run:
            run.workers = Workers(run, {}, maintenance=info.maintenance_worker)
            run.workers.start()
            try:
                info.run(run)
            finally:
                run.workers.stop()
            blocks.update(run.blocks)
    return blocks


# -- reading, comparing and writing the docs ------------------------------------------------


def blocks_in_docs(paths: list[Path] = DOCS) -> dict[str, tuple[Path, str]]:
    """Every transcript marked in the docs: name -> (file, text between the fences)."""
    found: dict[str, tuple[Path, str]] = {}
    for path in paths:
        for match in _BLOCK.finditer(path.read_text()):
            body = match.group("body").split("\n", 1)[1] if "```" in match.group("body") else ""
            found[match.group("name")] = (path, body.rsplit("```", 1)[0])
    return found


def normalise(text: str, shape_only: bool = False) -> str:
    """What must not differ between two runs: the text with times, dates, durations and
    host names replaced; for a shape-only block, titles, headings and row labels only."""
    text = _CURSOR.sub("<cursor>", text)  # first: base64 may look like a date
    text = _TIME.sub("<time>", text)
    text = _DATE.sub("<date>", text)
    text = _ELAPSED.sub("<elapsed>", text)
    text = _HOST.sub("@<host>", text)
    if shape_only:
        text = re.sub(r"\b[0-9a-f]{6}\b|\b[0-9A-F]{6}\b", "<tag>", text)
        text = re.sub(r"\d+(\.\d+)?", "N", text)
        kept: list[str] = []
        labels: list[str] = []  # the rows of the table being read, in any order
        for line in [*text.splitlines(), ""]:
            if line.startswith("│"):  # a table row: keep its label, the first cell
                cells = [cell.strip() for cell in line.split("│")[1:-1]]
                marked = cells[0][:1] in ("✓", "✗")  # an invariant: its name follows
                labels.append(" ".join(cells[: 2 if marked else 1]))
                continue
            kept += sorted(filter(None, labels))
            labels = []
            line = re.sub(r"[\u2500-\u257f\s]+", " ", line).strip()  # box drawing
            if line:
                kept.append(line)
        return "\n".join(kept) + "\n"
    return "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"


def stale(rendered: dict[str, Block], documented: dict[str, tuple[Path, str]]) -> list[str]:
    """A diff for every rendered block whose doc text differs (after `normalise`)."""
    problems = []
    for name, block in rendered.items():
        if not block.checked:
            continue
        if name not in documented:
            problems.append(f"{name}: no <!-- transcript:{name} --> block in the docs")
            continue
        path, text = documented[name]
        want = normalise(block.text(), block.shape_only)
        have = normalise(text, block.shape_only)
        if want != have:
            diff = difflib.unified_diff(
                have.splitlines(), want.splitlines(), f"{path.name} (docs)", "now", lineterm=""
            )
            problems.append(f"{name} in {path.relative_to(ROOT)} is stale:\n" + "\n".join(diff))
    return problems


def rewrite(rendered: dict[str, Block], paths: list[Path] = DOCS) -> list[Path]:
    """Write each rendered block between its markers; the files that changed."""
    changed = []
    for path in paths:
        original = path.read_text()

        def replace(match: re.Match[str]) -> str:
            block = rendered.get(match.group("name"))
            if block is None:
                return match.group(0)
            return (
                f"{match.group('open')}```{block.fence}\n{block.text()}```\n{match.group('close')}"
            )

        updated = _BLOCK.sub(replace, original)
        if updated != original:
            path.write_text(updated)
            changed.append(path)
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    parser.add_argument(
        "--only", nargs="*", choices=sorted(SCENARIOS), help="run these scenarios only"
    )
    options = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL")
    broker_url = os.environ.get("CELERY_BROKER_URL")
    if not database_url or not broker_url:
        parser.error(
            "set DATABASE_URL and CELERY_BROKER_URL (a scratch database is made next to it)"
        )
    rendered = render(options.only or list(SCENARIOS), database_url, broker_url)
    if options.check:
        problems = stale(rendered, blocks_in_docs())
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for path in rewrite(rendered):
        print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
