"""One thin Celery task per command type: translate the message, hand it to the runner."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.exceptions import Reject

from producers.commands import COMMAND_CLASSES
from worker.adapters.quarantine import QuarantineRecord
from worker.entrypoints.celery_app import app
from worker.entrypoints.consumer import QUARANTINE_TASK, UNKNOWN_TASK
from worker.service.runner import CommandRunner, Result, RetryLater

log = logging.getLogger(__name__)


class CommandRetry(Exception):
    """Why a command will be tried again (shown in Celery's retry log line)."""


def runner() -> CommandRunner:
    """This process's command runner (see worker.service.bootstrap)."""
    return app.services.runner


def _finish(task: Task, result: Result) -> dict[str, Any]:
    if isinstance(result, RetryLater):
        try:
            raise task.retry(countdown=result.countdown, exc=CommandRetry(result.error))
        except Reject as refused:
            # Celery drops the message (requeue=False) when it cannot publish the
            # retry, e.g. the broker went away. Put it back instead; the attempt
            # counter in the database still bounds how often it can come back.
            log.warning("could not schedule the retry (%s); requeueing the message", refused)
            raise Reject(refused.reason, requeue=True) from None
    return result.as_dict()


# With batching on, a command task's messages go to the pool in batches
# (worker/entrypoints/batching.py); the task body below still serves the messages that
# take Celery's one-task path (ETAs, expiry times, their own time limits).
_BATCHING: dict[str, Any] = (
    {"Strategy": "worker.entrypoints.batching:batching_strategy"}
    if app.settings.batch_max_size > 1
    else {}
)


def _command_task(command_type: str, task_name: str) -> Task:
    # *args/**kwargs: a message with the wrong argument shape is an invalid command
    # with an answer, not a TypeError that Celery would log and throw away.
    @app.task(name=task_name, bind=True, max_retries=None, **_BATCHING)
    def run_command(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
        retries = self.request.retries
        return _finish(self, runner().run_arguments(args, kwargs, command_type, retries))

    return run_command


@app.task(name=UNKNOWN_TASK, bind=True, max_retries=None)
def unknown_task(self: Task, task_name: Any = None, args: Any = None, kwargs: Any = None) -> Any:
    """Messages for task names no command uses, forwarded here by workers before the
    guard (consumer.py) quarantined them itself; kept for those still queued."""
    result = runner().reject_unknown_task(task_name, args, kwargs, self.request.retries)
    return _finish(self, result)


@app.task(name=QUARANTINE_TASK, bind=True, max_retries=None)
def quarantine(self: Task, record: Any = None) -> Any:
    """A message the consumer's guard refused: keep it, answer the key it carries."""
    stored = QuarantineRecord.from_dict(record)
    return _finish(self, runner().quarantine(stored, self.request.retries))


COMMAND_TASKS = {
    cls.task_name: _command_task(cls.model_fields["type"].default, cls.task_name)
    for cls in COMMAND_CLASSES
}
