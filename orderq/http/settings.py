"""What the HTTP service can be told; part of the operator's `orderq.settings.Settings`.

Each field reads `ORDERQ_<NAME>` (the port also reads `PORT`, which Procfile runners
and hosting platforms set for a `web` process). Reading them starts nothing.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict


class HttpSettings(BaseSettings):
    """Bind address, input bounds, waiting and relaying of the HTTP service."""

    # the same as ProducerSettings': in `Settings` both are bases and either may win
    model_config = SettingsConfigDict(
        env_prefix="ORDERQ_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # -- where it listens -------------------------------------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ORDERQ_HTTP_PORT", "http_port", "PORT"),
    )
    # Server processes (Granian workers). Each has its own pool, relay and waiter.
    http_workers: PositiveInt = 1

    # -- bounded input: every limit answers with a clear 4xx, never a 500 ---------------------
    # request line + headers; past it the server answers 431 (Granian's HTTP/1 buffer,
    # which hyper never lets below 8 KiB)
    http_max_header_bytes: int = Field(default=16 * 1024, ge=8192, le=1024 * 1024)
    # request body (413 past it); the command itself must also fit
    # ORDERQ_MAX_PAYLOAD_BYTES once its key and type are added
    http_max_body_bytes: PositiveInt = 64 * 1024
    # nesting of objects and arrays in a body (400 past it); a command needs 3
    http_max_json_depth: int = Field(default=16, ge=3, le=512)

    # -- Prefer: wait=N (RFC 7240) -----------------------------------------------------------
    # the longest a request may wait for its outcome; a larger N is cut to this
    http_max_wait_seconds: PositiveFloat = 30.0
    # how often waiting requests look for their outcomes (one query for all of them)
    http_wait_poll_seconds: PositiveFloat = 0.02

    # -- database pool of one server process ------------------------------------------------
    http_pool_size: PositiveInt = 10
    http_pool_max_overflow: int = Field(default=10, ge=0)

    # -- the relay: accepted commands to the broker, after their commit ----------------------
    # Commands accepted by no live relay (broker down when they came, the process that
    # took them killed) are picked up by every API process this often …
    http_relay_sweep_seconds: PositiveFloat = 1.0
    # … once they are this old (a younger one is still its own relay's to send)
    http_relay_grace_seconds: PositiveFloat = 3.0
    # accepted commands kept in memory for the relay; past it they wait for a sweep
    http_relay_queue_size: PositiveInt = 10_000
