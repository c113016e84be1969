"""Batched delivery: the command tasks' strategy gathers messages into batches.

Celery hands every message of a command task to its task's *strategy*, in the
worker's main process, after the guard (consumer.py) accepted it. This strategy keeps
the message (unacknowledged) in the consumer's `Batcher` instead of making one pool
job of it. The batcher sends a batch to the pool whenever a pool process is free:

- at low load a lone command goes out at once, in a batch of one — nothing waits for
  company unless `ORDERQ_BATCH_MAX_WAIT_MS` asks for it;
- under load, while every pool process is busy, the messages that arrive pile up and
  leave together as the next batch (up to `ORDERQ_BATCH_MAX_SIZE`): batches grow with
  the load, like a database's group commit.

In the pool process `run_batch` decides the batch in one transaction
(worker/service/batch.py) and publishes the retries it decides on, as Celery's own
retry does. Back in the main process the messages are acknowledged — only now, after
the commit — or, where a retry could not be published, returned to the queue. A batch
whose process dies (SIGKILL, OOM, the hard time limit, which applies to a batch as a
whole) commits nothing; its messages, still unacknowledged, go to the pool again one at
a time, so a command that kills its process cannot use up the attempts of the others
(a lone message whose process dies goes back to the queue, as with Celery).

A message that asks for something a batch does not do — an ETA or countdown, an expiry
time, its own time limits — takes Celery's ordinary path, one task at a time, and so
does a message whose task id was revoked (Celery then drops it, as without batching).

A batched message is not a Celery task request, so the batcher sends the task events
Celery would (received, started, succeeded or retried, with the task's result) while
task events are on — Flower turns them on — and Flower lists batched commands like
any task; the runtime of each is its batch's.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from time import monotonic
from typing import Any

from celery.utils.saferepr import saferepr
from celery.worker.strategy import default as default_strategy

from producers.commands import COMMANDS_BY_TASK
from worker.entrypoints.celery_app import app
from worker.service.batch import BatchItem, BatchRunner
from worker.service.outcome import Outcome
from worker.service.runner import RetryLater

log = logging.getLogger(__name__)

ACK = "ack"
REQUEUE = "requeue"
#: how much of a result a task event shows (Celery's default for its own results)
_RESULT_REPR_BYTES = 1024
#: headers a message of the batch path may carry through to its retry
_TRACE_HEADERS = ("traceparent", "tracestate")


@dataclass
class Waiting:
    """A message kept unacknowledged until its batch is decided."""

    message: Any
    job: dict[str, Any]
    since: float
    #: its batch was lost: it goes to the pool again, but in a batch of its own
    alone: bool = False
    #: when its batch went to the pool (the runtime its task events report)
    sent: float = 0.0


@dataclass(frozen=True)
class Verdict:
    """What the main process does with one message of a batch, and what it reports."""

    settle: str  # ACK (decided, or its retry published) or REQUEUE
    #: the task's result as Celery's events show it (the outcome's repr)
    result: str = ""
    #: why it was retried, when its retry was published
    retried: str | None = None


class Batcher:
    """The main process's buffer of command messages and its batches in the pool."""

    def __init__(self, consumer: Any) -> None:
        settings = app.settings
        self.consumer = consumer
        self.connection = consumer.connection
        self.errors = tuple(consumer.connection_errors)
        self.max_size = settings.batch_max_size
        self.max_wait = settings.batch_max_wait_ms / 1000
        self.time_limit = settings.task_time_limit_seconds
        self.soft_time_limit = settings.task_soft_time_limit_seconds
        self.waiting: deque[Waiting] = deque()
        self.in_flight = 0
        self._timer: Any = None

    @property
    def capacity(self) -> int:
        """Batches that may run at once: one per pool process."""
        processes = getattr(self.consumer.pool, "num_processes", None)
        return max(1, int(processes or self.consumer.controller.concurrency))

    def add(self, message: Any, job: dict[str, Any], received: dict[str, Any] | None) -> None:
        self.waiting.append(Waiting(message, job, monotonic()))
        if received is not None:
            self.event("task-received", uuid=job["id"], **received)
        self.dispatch()

    @property
    def task_events(self) -> bool:
        """Whether task events are on (Flower, `celery control enable_events`, `-E`)."""
        dispatcher = self.consumer.event_dispatcher
        if dispatcher is None or not dispatcher.enabled:
            return False
        return not dispatcher.groups or "task" in dispatcher.groups

    def event(self, kind: str, **fields: Any) -> None:
        """Send a task event as Celery's task requests do, when task events are on."""
        if not fields.get("uuid") or not self.task_events:
            return
        dispatcher = self.consumer.event_dispatcher
        try:
            dispatcher.send(kind, **fields)
        except Exception as error:  # monitoring must never stop a batch
            log.debug("could not send a %s event: %s", kind, error)

    def dispatch(self) -> None:
        """Send batches to free pool processes (see the module docstring)."""
        while self.waiting and self.in_flight < self.capacity:
            if self.waiting[0].alone:
                self._send([self.waiting.popleft()])
                continue
            if self.max_wait and len(self.waiting) < self.max_size:
                due = self.waiting[0].since + self.max_wait
                if monotonic() < due:
                    self._wake_at(due)
                    return
            batch: list[Waiting] = []
            while self.waiting and len(batch) < self.max_size and not self.waiting[0].alone:
                batch.append(self.waiting.popleft())
            self._send(batch)

    def _wake_at(self, due: float) -> None:
        if self._timer is None:
            delay = max(0.0, due - monotonic())
            self._timer = self.consumer.timer.call_after(delay, self._woken, priority=6)

    def _woken(self) -> None:
        self._timer = None
        self.dispatch()

    def _send(self, batch: list[Waiting]) -> None:
        self.in_flight += 1
        sent = monotonic()
        for waiting in batch:
            waiting.sent = sent
            self.event("task-started", uuid=waiting.job["id"])
        try:
            self.consumer.pool.apply_async(
                run_batch,
                args=([waiting.job for waiting in batch],),
                callback=lambda verdicts: self._done(batch, verdicts),
                error_callback=lambda error, *_: self._lost(batch, error),
                soft_timeout=self.soft_time_limit,
                timeout=self.time_limit,
            )
        except Exception as error:
            self._lost(batch, error)

    def _done(self, batch: list[Waiting], verdicts: Any) -> None:
        self.in_flight -= 1
        if not isinstance(verdicts, list) or len(verdicts) != len(batch):
            log.error("a batch returned %r; returning its messages to the queue", verdicts)
            verdicts = [Verdict(REQUEUE)] * len(batch)
        runtime = monotonic() - batch[0].sent
        for waiting, verdict in zip(batch, verdicts, strict=True):
            _settle(waiting.message, verdict.settle != ACK, self.errors)
            if verdict.retried is not None:
                self.event("task-retried", uuid=waiting.job["id"], exception=verdict.retried)
            elif verdict.settle == ACK:
                self.event(
                    "task-succeeded", uuid=waiting.job["id"], result=verdict.result, runtime=runtime
                )
        self.dispatch()

    def _lost(self, batch: list[Waiting], error: Any) -> None:
        """The pool process of `batch` died (killed, out of memory, the hard time limit
        for the batch as a whole) before it answered.

        One message alone goes back to the queue, as Celery does with a task whose
        process was lost; its attempts, counted in the database, bound how often. The
        messages of a bigger batch go to the pool again one at a time, so one command
        that kills its process, or a batch too slow for the time limit, cannot use up
        the attempts of the others."""
        self.in_flight -= 1
        alone = len(batch) > 1 and self.connection is self.consumer.connection
        log.warning(
            "a batch of %s messages did not finish (%s); %s",
            len(batch),
            _short(error),
            "deciding them one at a time" if alone else "returning them to the queue",
        )
        if alone:
            for waiting in reversed(batch):
                waiting.alone = True
                self.waiting.appendleft(waiting)
        else:
            for waiting in batch:
                _settle(waiting.message, True, self.errors)
        self.dispatch()


def _short(error: Any) -> str:
    """What billiard reports for a lost job, in one line."""
    reason = getattr(error, "exception", error)
    return f"{type(reason).__name__}: {reason}".splitlines()[0][:300]


def _settle(message: Any, requeue: bool, errors: tuple[type[BaseException], ...]) -> None:
    try:
        if requeue:
            message.reject_log_error(log, errors, requeue=True)
        else:
            message.ack_log_error(log, errors)
    except Exception:  # its channel is gone: the broker hands the message out again
        log.warning("could not settle a message of a batch; the broker will redeliver it")


def batcher_of(consumer: Any) -> Batcher:
    """The consumer's batcher for its current connection, shared by every command task.

    After a lost connection Celery rebuilds the strategies on the new one. It has also
    cleared the timer and flushed the pool jobs not yet started — their callbacks never
    come — and the messages still waiting cannot be acknowledged on the new channel (the
    broker hands them out again). So a new connection gets a new batcher, starting empty.
    """
    batcher = getattr(consumer, "orderq_batcher", None)
    if batcher is None or batcher.connection is not consumer.connection:
        batcher = consumer.orderq_batcher = Batcher(consumer)
    return batcher


def goes_alone(headers: dict[str, Any]) -> bool:
    """A message that asks for what only Celery's one-task path does."""
    limits = headers.get("timelimit") or (None, None)
    return bool(
        headers.get("eta") or headers.get("expires") or any(limit is not None for limit in limits)
    )


def batching_strategy(task: Any, app: Any, consumer: Any, **options: Any) -> Any:
    """The strategy of a command task (selected by its `Strategy` attribute)."""
    alone = default_strategy(task, app, consumer, **options)
    batcher = batcher_of(consumer)
    command_type = COMMANDS_BY_TASK[task.name].model_fields["type"].default
    revoked = consumer.controller.state.revoked

    def handle(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any) -> Any:
        headers = getattr(message, "headers", None)
        payload = getattr(message, "payload", None)
        if (
            not isinstance(headers, dict)
            or not isinstance(payload, tuple)
            or goes_alone(headers)
            or headers.get("id") in revoked
        ):
            return alone(message, body, ack, reject, callbacks, **kw)
        args, kwargs, _ = payload
        info = getattr(message, "delivery_info", None) or {}
        job = {
            "task": task.name,
            "command_type": command_type,
            "args": list(args),
            "kwargs": dict(kwargs),
            "retries": headers.get("retries") or 0,
            "id": headers.get("id"),
            "queue": info.get("routing_key") or app.settings.command_queue,
            "headers": {name: headers[name] for name in _TRACE_HEADERS if name in headers},
            # the outcome is shown in a task event only while someone watches
            "shown": batcher.task_events,
        }
        received = (
            {
                "name": task.name,
                "args": headers.get("argsrepr") or saferepr(args),
                "kwargs": headers.get("kwargsrepr") or saferepr(kwargs),
                "retries": job["retries"],
                "root_id": headers.get("root_id"),
                "parent_id": headers.get("parent_id"),
            }
            if job["shown"]
            else None
        )
        batcher.add(message, job, received)
        return None

    return handle


# -- in the pool process ------------------------------------------------------------------


def run_batch(jobs: list[dict[str, Any]]) -> list[Verdict]:
    """Decide a batch (one transaction) and publish its retries; one verdict per job."""
    runner = app.services.runner
    items = [
        BatchItem(
            job["command_type"], job["args"], job["kwargs"], int(job["retries"]), job["headers"]
        )
        for job in jobs
    ]
    try:
        results = BatchRunner(runner).run(items)
    except Exception:  # a bug in the batch path: the single path never raises
        log.exception("the batch path failed; deciding its commands one by one")
        results = [
            runner.run_arguments(item.args, item.kwargs, item.command_type, item.retries)
            for item in items
        ]
    return [
        _publish_retry(job, result)
        if isinstance(result, RetryLater)
        else Verdict(ACK, _shown(result) if job.get("shown") else "")
        for job, result in zip(jobs, results, strict=True)
    ]


def _shown(outcome: Outcome) -> str:
    """The outcome as a task event's result; never raises (the batch is committed)."""
    try:
        return saferepr(outcome.as_dict(), maxlen=_RESULT_REPR_BYTES)
    except Exception as error:
        return f"<outcome not shown: {type(error).__name__}>"


def _publish_retry(job: dict[str, Any], retry: RetryLater) -> Verdict:
    """Send the message again to run after `retry.countdown`, as `task.retry` does."""
    try:
        app.send_task(
            job["task"],
            args=job["args"],
            kwargs=job["kwargs"],
            countdown=retry.countdown,
            task_id=job["id"],
            retries=int(job["retries"]) + 1,
            queue=job["queue"],
            headers=job["headers"],
            retry=True,
        )
    except Exception as error:  # the broker is away: back to the queue, counted anyway
        log.warning("could not publish the retry of %s (%s); requeueing it", job["id"], error)
        return Verdict(REQUEUE)
    log.info("command task %s retries in %.1fs: %s", job["id"], retry.countdown, retry.error)
    return Verdict(ACK, retried=f"Retry in {retry.countdown:g}s: {retry.error}"[:1024])
