"""A test run leaves nothing behind: what a session creates outside its own process, the
cleanup when it ends (tests/conftest.py), and the check that lists whatever is left.

Everything is found by name, never by guessing:

- files: the session's scratch folder (tests/support/scratch.py), except the logs kept
  for failing tests;
- databases: `<test database>_<purpose>` (tests/support/database.py SCRATCH_PURPOSES);
- Redis, the test database: keys and bookkeeping entries (kombu bindings, pidbox members,
  unacknowledged messages) naming the session's namespace `test-<tag>`, and entries that
  name no session at all but appeared during it (Flower's event queue, the reply queues
  of `orderq health`);
- RabbitMQ: the queues the session declared (`declared_amqp_queue`).

    python -m tests.support.leftovers [--remove]

lists (and removes) what test sessions that no longer run left on the configured test
servers and in the temp folder — a run killed before it could clean up — and exits 1 if
anything is left. Run it when no other test session uses the same Redis database:
entries that name no session cannot be told apart.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.names import ANY_NAMESPACE, NAMESPACE


@dataclass(frozen=True)
class Leftover:
    """Something a test session left behind, and how to remove it."""

    where: str
    what: str
    remove: Callable[[], Any] = field(compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


# -- Redis ------------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_client(broker_url: str) -> Iterator[Any]:
    """A redis-py client for a kombu broker URL (TCP or the embedded server's socket)."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=3) as connection:
        yield connection.default_channel.client


def _decode(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _members(client: Any, key: str, kind: str) -> list[tuple[str, bytes]]:
    """(readable text, raw member) of a set, sorted set or hash. The text names the
    queue where kombu keeps it elsewhere: a hash's text is field and value (an unacked
    message names its queue), an `unacked_index` member's is its `unacked` entry too."""
    if kind == "set":
        return [(_decode(m), m) for m in client.smembers(key)]
    if kind == "zset":
        members = client.zrange(key, 0, -1)
        if key != "unacked_index":
            return [(_decode(m), m) for m in members]
        return [(f"{_decode(m)} {_decode(client.hget('unacked', m) or b'')}", m) for m in members]
    if kind == "hash":
        return [(_decode(f) + " " + _decode(v), f) for f, v in client.hgetall(key).items()]
    return []


_REMOVE_MEMBER = {"set": "srem", "zset": "zrem", "hash": "hdel"}


def redis_state(client: Any) -> set[str]:
    """Every key and `key member` in the database (what was there before a session)."""
    state = set()
    for raw in client.scan_iter(count=500):
        key = _decode(raw)
        state.add(key)
        for text, _ in _members(client, key, _decode(client.type(raw))):
            state.add(f"{key} {text}")
    return state


def redis_leftovers(client: Any, owns: Callable[[str], bool], where: str) -> list[Leftover]:
    """What `owns` claims: whole keys, or — in sets, sorted sets and hashes whose name
    belongs to no session (kombu's shared binding tables, `unacked`) — single members."""
    found = []
    for raw in client.scan_iter(count=500):
        key = _decode(raw)
        kind = _decode(client.type(raw))
        if client.ttl(raw) > 0:
            continue  # expires by itself (kombu's unacked_mutex)
        remove = _REMOVE_MEMBER.get(kind)
        if remove is None or ANY_NAMESPACE.search(key):
            if owns(key):
                found.append(Leftover(where, f"{kind} {key}", lambda raw=raw: client.delete(raw)))
            continue
        for text, member in _members(client, key, kind):
            if owns(f"{key} {text}"):
                found.append(
                    Leftover(
                        where,
                        f"{key} ∋ {text[:120]!r}",
                        lambda raw=raw, member=member, remove=remove: getattr(client, remove)(
                            raw, member
                        ),
                    )
                )
    return found


def session_owns(before: set[str], namespace: str = NAMESPACE) -> Callable[[str], bool]:
    """A session's Redis entries: those naming its namespace, and those naming no
    session that were not there when it started."""

    def owns(text: str) -> bool:
        if namespace in text:
            return True
        return text not in before and ANY_NAMESPACE.search(text) is None

    return owns


# -- RabbitMQ ---------------------------------------------------------------------------------

_amqp_queues: set[tuple[str, str]] = set()


def declared_amqp_queue(amqp_url: str, queue: str) -> None:
    """Remember a queue this session declared on RabbitMQ (it is deleted at the end)."""
    _amqp_queues.add((amqp_url, queue))


def _amqp_queue_exists(amqp_url: str, queue: str) -> bool:
    from amqp.exceptions import NotFound
    from kombu import Connection

    with Connection(amqp_url, connect_timeout=3) as connection:
        try:
            connection.channel().queue_declare(queue, passive=True)
        except NotFound:
            return False
    return True


def _delete_amqp_queue(amqp_url: str, queue: str) -> None:
    from kombu import Connection

    with Connection(amqp_url, connect_timeout=3) as connection:
        connection.channel().queue_delete(queue)


def amqp_leftovers() -> list[Leftover]:
    return [
        Leftover(amqp_url, f"queue {queue}", lambda u=amqp_url, q=queue: _delete_amqp_queue(u, q))
        for amqp_url, queue in sorted(_amqp_queues)
        if _amqp_queue_exists(amqp_url, queue)
    ]


def idle_rabbitmq_queues(pattern: re.Pattern[str]) -> list[str] | None:
    """Queues on the local RabbitMQ matching `pattern` that nobody consumes; None if
    rabbitmqctl cannot say (AMQP itself cannot list queues)."""
    if shutil.which("rabbitmqctl") is None:
        return None
    try:
        listed = subprocess.run(
            ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name", "consumers"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    rows = (line.split() for line in listed.stdout.splitlines())
    return [row[0] for row in rows if len(row) == 2 and row[1] == "0" and pattern.search(row[0])]


# -- databases --------------------------------------------------------------------------------


def database_leftovers(test_database_url: str) -> list[Leftover]:
    """The scratch databases next to the test database that exist."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from producers.database import normalize_database_url
    from tests.support.database import SCRATCH_PURPOSES, drop_database, scratch_database_url

    urls = {scratch_database_url(test_database_url, p): p for p in SCRATCH_PURPOSES}
    names = {make_url(url).database: url for url in urls}
    admin_url = make_url(normalize_database_url(test_database_url)).set(database="postgres")
    admin = create_engine(admin_url)
    try:
        with admin.connect() as connection:
            existing = connection.execute(
                text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"),
                {"names": list(names)},
            ).scalars()
            found = sorted(existing)
    finally:
        admin.dispose()
    where = admin_url.render_as_string(hide_password=True)
    return [Leftover(where, f"database {n}", lambda u=names[n]: drop_database(u)) for n in found]


# -- files ------------------------------------------------------------------------------------


def scratch_folders() -> list[Path]:
    """Every test session's scratch folder in the temp folder."""
    return sorted(Path(tempfile.gettempdir()).glob("orderq-scratch-test-*"))


def owner_alive(folder: Path) -> bool:
    """Is the pytest process that made this scratch folder still running?"""
    try:
        pid = int((folder / "owner.pid").read_text())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the session's own check ------------------------------------------------------------------


class SessionLeftovers:
    """What this session left: call `start()` before the first test, `clean()` after
    the last; `clean()` removes it all and returns what could not be removed."""

    def __init__(self, database_url: str, broker_url: str) -> None:
        self.database_url = database_url
        self.broker_url = broker_url
        self._redis_before: set[str] = set()

    def start(self) -> None:
        with redis_client(self.broker_url) as client:
            self._redis_before = redis_state(client)

    def found(self, client: Any, kept: Iterable[Path] = ()) -> list[Leftover]:
        from tests.support import scratch

        owns = session_owns(self._redis_before)
        found = redis_leftovers(client, owns, self.broker_url)
        found += amqp_leftovers()
        found += database_leftovers(self.database_url)
        keep = {path.resolve() for path in kept}

        def left(path: Path) -> bool:
            resolved = path.resolve()
            return not (keep & {resolved, *resolved.parents}) and path.name != scratch.OWNER

        if scratch.ROOT.exists():
            files = [p for p in scratch.ROOT.rglob("*") if p.is_file() and left(p)]
            if files:
                what = f"{len(files)} file(s), e.g. {files[0]}"
                found.append(Leftover(str(scratch.ROOT), what, lambda: None))
        return found

    def clean(self, kept: list[Path]) -> list[Leftover]:
        from tests.support import scratch

        with redis_client(self.broker_url) as client:
            for leftover in self.found(client, kept):
                try:
                    leftover.remove()
                except Exception as error:  # reported by the check that follows
                    print(f"could not remove {leftover}: {error}", file=sys.stderr)
            scratch.remove_all_but(kept)
            return self.found(client, kept)


# -- the check after the fact -----------------------------------------------------------------


def stale_leftovers(client: Any) -> list[Leftover]:
    """What test sessions that no longer run left on the configured test servers (Redis:
    `client`) and in the temp folder."""
    from tests.support.names import AMQP_URL, CONFIGURED_BROKER_URL, CONFIGURED_DATABASE_URL

    folders = scratch_folders()
    live = {f.name.removeprefix("orderq-scratch-") for f in folders if owner_alive(f)}

    def stale(text: str) -> bool:
        return not any(namespace in text for namespace in live)

    found = [
        Leftover(str(folder), "scratch folder", lambda f=folder: shutil.rmtree(f))
        for folder in folders
        if not owner_alive(folder)
    ]
    found += database_leftovers(CONFIGURED_DATABASE_URL)
    found += redis_leftovers(client, stale, CONFIGURED_BROKER_URL)
    queues = idle_rabbitmq_queues(ANY_NAMESPACE)
    if queues is None:
        print("(RabbitMQ not checked: rabbitmqctl is not available)", file=sys.stderr)
    else:
        found += [
            Leftover("rabbitmq", f"queue {q}", lambda q=q: _delete_amqp_queue(AMQP_URL, q))
            for q in queues
            if stale(q)
        ]
    return found


def main(arguments: list[str]) -> int:
    remove = arguments == ["--remove"]
    if arguments and not remove:
        print("usage: python -m tests.support.leftovers [--remove]", file=sys.stderr)
        return 2
    from tests.support.names import CONFIGURED_BROKER_URL

    with redis_client(CONFIGURED_BROKER_URL) as client:
        if remove:
            for leftover in stale_leftovers(client):
                leftover.remove()
                print(f"removed {leftover}")
        report = stale_leftovers(client)
    for leftover in report:
        print(leftover)
    if not report:
        print("no leftovers")
    return 1 if report else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
