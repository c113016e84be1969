"""One thin Celery task per command type: translate the message, hand it to the runner."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Task

from producers.commands import COMMAND_CLASSES
from producers.settings import get_settings
from worker.adapters.engine import get_engine, get_session_factory
from worker.entrypoints.celery_app import app
from worker.service.runner import CommandRunner, RetryLater


@lru_cache(maxsize=1)
def runner() -> CommandRunner:
    return CommandRunner(get_settings(), get_engine(), get_session_factory())


def _command_task(command_type: str, task_name: str) -> Task:
    @app.task(name=task_name, bind=True, max_retries=None)
    def run_command(self: Task, message: Any) -> dict[str, Any]:
        result = runner().run(message, command_type, retries=self.request.retries)
        if isinstance(result, RetryLater):
            raise self.retry(countdown=result.countdown, exc=RuntimeError(result.error))
        return result.as_dict()

    return run_command


COMMAND_TASKS = {
    cls.task_name: _command_task(cls.model_fields["type"].default, cls.task_name)
    for cls in COMMAND_CLASSES
}
