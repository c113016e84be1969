"""A producer process for the duplicate storm: publishes every message it is given."""

from __future__ import annotations

import random
from typing import Any


def publish_all(queue: str, broker_url: str, messages: list[dict[str, Any]], seed: int) -> int:
    """Publish each message once, in a shuffled order; return how many were sent.

    Runs in a separate (spawned) process, so it builds its own settings and publisher
    like any upstream system would.
    """
    from orderq.settings import Settings
    from producers.commands import parse_command
    from producers.publisher import Publisher

    order = list(messages)
    random.Random(seed).shuffle(order)
    with Publisher(Settings(command_queue=queue, broker_url=broker_url)) as publisher:
        for message in order:
            publisher.publish(parse_command(message))
    return len(order)
