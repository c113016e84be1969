"""Re-send commands that were accepted but have no outcome after a while.

A message can be lost between `queued` and a worker (broker data loss, a purge of the
queue, a crash before the late ack reached a durable broker). Sending it again is
safe: the ledger runs each key once. Commands the HTTP intake accepted but never
handed to the broker (its relay could not reach the broker, or its process died) are
sent first, once `unpublished_command_after_seconds` old — the API processes' own
relays normally get there within seconds; this is the fallback when none runs. Each
command is re-sent at most `republish_max_times`; a command a worker keeps failing ends
as `failed` on its own, through the attempt counter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from producers.commands import COMMANDS_BY_TYPE
from worker.adapters import tracing
from worker.adapters.stuck_commands import (
    StuckCommand,
    UnpublishedCommand,
    publish_unpublished_batch,
    republish_batch,
)
from worker.service.maintenance.report import RunReport, locked
from worker.settings import WorkerSettings

TASK = "republish_stuck_commands"

#: sends a stored command message to its task: (task name, key, message)
SendCommand = Callable[[str, str, dict[str, Any]], None]


def republish_stuck(
    settings: WorkerSettings, engine: Engine, send_command: SendCommand
) -> RunReport:
    """Re-send stuck commands in bounded batches under the task's advisory lock."""

    def send(command: StuckCommand | UnpublishedCommand) -> None:
        task_name = COMMANDS_BY_TYPE[command.command_type].task_name
        # inside the accepting HTTP request's trace, when it was traced
        with tracing.continued(command.trace_context):
            send_command(task_name, command.key, command.payload)

    def body(report: RunReport) -> None:
        report.set(published=0, republished=0, more=False)
        for _ in range(settings.maintenance_max_batches):
            sent, error = publish_unpublished_batch(
                engine,
                settings.unpublished_command_after_seconds,
                settings.maintenance_batch_size,
                send,
            )
            report.count(published=sent)
            if error is not None:
                report.set(error=f"{error.__class__.__name__}: {error}")
                return
            if sent < settings.maintenance_batch_size:
                break
        for _ in range(settings.maintenance_max_batches):
            sent, error = republish_batch(
                engine,
                settings.stuck_command_after_seconds,
                settings.republish_max_times,
                settings.maintenance_batch_size,
                sorted(COMMANDS_BY_TYPE),
                send,
            )
            report.count(republished=sent)
            if error is not None:
                report.set(error=f"{error.__class__.__name__}: {error}")
                return
            if sent < settings.maintenance_batch_size:
                return
        report.set(more=True)

    return locked(engine, TASK, body)
