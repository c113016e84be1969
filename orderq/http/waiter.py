"""`Prefer: wait=N`: requests waiting for their commands' outcomes, by polling.

All requests waiting in one server process share one poll: every
`ORDERQ_HTTP_WAIT_POLL_SECONDS` a single query reads the ledger and the delivery log
for all their keys, and each request whose key is decided (or dead-lettered) is
answered. Polling rather than LISTEN/NOTIFY: a NOTIFY per decision would put a
global lock into every worker's commit and does not pass through PgBouncer in
transaction pooling mode; one indexed query per poll for any number of waiting
requests costs less than either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from producers.command_log import KeyRecord

log = logging.getLogger("orderq.http.waiter")

#: at most this many keys per poll query
CHUNK = 1000


class OutcomeWaiter:
    """Wait for stored keys to become terminal; one poll loop per event loop."""

    def __init__(
        self,
        lookup: Callable[[Sequence[str]], Awaitable[dict[str, KeyRecord]]],
        is_terminal: Callable[[KeyRecord], bool],
        interval: float,
    ) -> None:
        self._lookup = lookup
        self._is_terminal = is_terminal
        self._interval = interval
        self._waiting: dict[str, list[asyncio.Future[KeyRecord]]] = {}
        self._latest: dict[str, KeyRecord] = {}
        self._poller: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(len(futures) for futures in self._waiting.values())

    async def wait(self, key: str, timeout: float) -> tuple[KeyRecord | None, bool]:
        """(the key's record, whether it is terminal) after at most `timeout` seconds;
        the record is the last one seen (None if no poll ran yet)."""
        future: asyncio.Future[KeyRecord] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="orderq-outcome-poll")
        try:
            return await asyncio.wait_for(future, timeout), True
        except TimeoutError:
            return self._latest.get(key), False
        finally:
            futures = self._waiting.get(key, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiting.pop(key, None)
                self._latest.pop(key, None)

    async def _poll(self) -> None:
        while self._waiting:
            keys = list(self._waiting)
            for start in range(0, len(keys), CHUNK):
                try:
                    records = await self._lookup(keys[start : start + CHUNK])
                except Exception as error:  # the database is away: keep waiting, keep polling
                    log.warning("outcome poll failed: %s", error)
                    break
                for key, record in records.items():
                    if key not in self._waiting:
                        continue
                    if self._is_terminal(record):
                        for future in self._waiting.pop(key):
                            if not future.done():
                                future.set_result(record)
                        self._latest.pop(key, None)
                    else:
                        self._latest[key] = record
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
