"""Broker options shared by the publisher and the worker: transport and send retries."""

from __future__ import annotations

from typing import Any

from producers.settings import ProducerSettings


def broker_transport_options(settings: ProducerSettings) -> dict[str, Any]:
    """Redis transport options (other transports ignore the ones they do not know)."""
    return {
        # Redis redelivers an unacked message after this long; it must exceed the
        # longest task plus the longest retry countdown or a slow command would be
        # handed to a second worker while the first still runs it. It is also how long
        # the messages of a worker that died whole (host crash, SIGKILL of the main
        # process) wait before another worker gets them.
        "visibility_timeout": settings.redis_visibility_timeout_seconds,
        # kombu only sweeps for such abandoned messages every interval * throttle
        # seconds (100 s by default); make the interval alone decide.
        "unacked_restore_interval": settings.redis_unacked_restore_interval_seconds,
        "unacked_restore_throttle": 1,
        # A broker that stops answering without closing the socket must surface as a
        # connection error (then retry) rather than a publish or ack that waits forever.
        "socket_timeout": settings.broker_socket_timeout_seconds,
        "socket_connect_timeout": settings.broker_socket_timeout_seconds,
    }


def publish_retry_policy(settings: ProducerSettings) -> dict[str, float]:
    """Kombu's retry policy for sending while the broker is briefly unreachable."""
    return {
        "max_retries": settings.publish_max_retries,
        "interval_start": 0,
        "interval_step": settings.publish_retry_interval_seconds,
        "interval_max": settings.publish_retry_interval_seconds * 4,
    }
