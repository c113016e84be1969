"""What the routes use, built once per server process by the app's lifespan.

The routes stay thin: they read the request, call these services (blocking work in
threads, bounded by the database pool) and translate the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import Request

from orderq.http.intake import Intake, is_terminal
from orderq.http.relay import Relay
from orderq.http.waiter import OutcomeWaiter
from orderq.read import Reader
from producers.command_log import KeyRecord
from worker.adapters.engine import build_worker_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from orderq.settings import Settings

T = TypeVar("T")


@dataclass
class HttpServices:
    """The intake, the relay, the waiter and the reader of one server process, on one
    engine."""

    settings: Settings
    engine: Engine
    intake: Intake
    relay: Relay
    waiter: OutcomeWaiter
    reader: Reader
    #: blocking calls at once: no more than the pool has connections, so a burst
    #: queues here instead of timing out on the pool
    limiter: CapacityLimiter

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker thread."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)

    async def records(self, keys: Sequence[str]) -> dict[str, KeyRecord]:
        return await self.run(self.intake.records, keys)

    def start(self) -> None:
        self.relay.start()

    async def stop(self) -> None:
        await self.waiter.close()
        await anyio.to_thread.run_sync(self.relay.stop)
        self.engine.dispose()


def build_services(settings: Settings) -> HttpServices:
    """Engine, intake, relay, waiter and reader from the resolved settings (nothing
    started)."""
    engine = build_worker_engine(settings, settings.http_pool_size, settings.http_pool_max_overflow)
    intake = Intake(engine, settings.max_payload_bytes, settings.http_max_json_depth)
    relay = Relay(
        settings,
        engine,
        sweep_seconds=settings.http_relay_sweep_seconds,
        grace_seconds=settings.http_relay_grace_seconds,
        queue_size=settings.http_relay_queue_size,
    )
    services = HttpServices(
        settings=settings,
        engine=engine,
        intake=intake,
        relay=relay,
        waiter=None,  # type: ignore[arg-type]  (needs `services.records`, set below)
        reader=Reader.from_settings(engine, settings),
        limiter=CapacityLimiter(settings.http_pool_size + settings.http_pool_max_overflow),
    )
    services.waiter = OutcomeWaiter(services.records, is_terminal, settings.http_wait_poll_seconds)
    return services


def services_of(request: Request) -> HttpServices:
    """The services of the app serving `request`."""
    return request.app.state.services  # type: ignore[no-any-return]
