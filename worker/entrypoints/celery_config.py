"""Celery settings for reliable, at-least-once delivery; the database makes it exactly-once."""

from __future__ import annotations

from typing import Any

from producers.broker import broker_transport_options, publish_retry_policy
from worker.entrypoints.beat_schedule import beat_schedule
from worker.settings import WorkerSettings


def celery_config(settings: WorkerSettings) -> dict[str, Any]:
    """The Celery configuration derived from orderq's settings."""
    return {
        # None until configured: a worker or beat then refuses to start (celery_app.py)
        "broker_url": settings.broker_url,
        # Ack after the task returns, not on receipt: a worker that dies mid-command
        # leaves its message on the broker to be redelivered.
        "task_acks_late": True,
        # A child killed by SIGKILL/OOM requeues its message. A message that kills every
        # worker would loop forever, except that attempts are counted in the database
        # before each run and the command is dead-lettered after `max_attempts`.
        "task_reject_on_worker_lost": True,
        # Without batching each process reserves one message at a time. With it, a
        # process's next batch gathers while its current one runs: up to a batch per
        # process is reserved (unacked — a crash redelivers all of them).
        "worker_prefetch_multiplier": settings.batch_max_size,
        # JSON only: commands are a documented cross-language contract, never pickles.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Outcomes live in the command ledger; Celery's result backend is not used.
        "task_ignore_result": True,
        "broker_transport_options": broker_transport_options(settings),
        # Hard limit kills a stuck child (its message is redelivered); the soft limit
        # comes first so the transaction can roll back cleanly.
        "task_time_limit": settings.task_time_limit_seconds,
        "task_soft_time_limit": settings.task_soft_time_limit_seconds,
        # Celery acks a message whose task hit the hard limit by default: the command
        # would be gone without an outcome. Requeue it instead; the attempt counter in
        # the database still ends it as `failed` if it hangs every time.
        "task_acks_on_timeout": False,
        # Keep retrying the broker at startup instead of exiting (Celery 6 changes the
        # default), so a worker started before Redis comes up waits for it.
        "broker_connection_retry_on_startup": True,
        # If the broker connection drops, tasks in flight will be redelivered anyway;
        # cancelling them avoids running the same command twice at once.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Publisher side: retry sending while the broker is briefly unreachable.
        "task_publish_retry": True,
        "task_publish_retry_policy": publish_retry_policy(settings),
        "task_default_queue": settings.command_queue,
        "task_routes": {"orderq.maintenance.*": {"queue": settings.maintenance_queue}},
        # Task events cost three extra broker messages per command. Off by default:
        # Flower switches them on in every worker while it watches (--enable_events),
        # ORDERQ_TASK_EVENTS=true keeps them on for other monitors.
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "worker_hijack_root_logger": False,
        # Maintenance jobs (their intervals come from settings; 0 turns one off).
        "beat_schedule": beat_schedule(settings),
        # Each run is claimed in PostgreSQL before it is sent: a beat may run on every
        # host, each run is still sent once. No state file (the claims table is it).
        "beat_scheduler": "worker.entrypoints.beat_scheduler:ClaimingScheduler",
        # Every message goes through orderq's guard before Celery reads it: what Celery
        # cannot run (bad headers, body, encoding, unknown or Celery-internal task
        # names, ETAs and time limits out of bounds) is quarantined and its key answered
        # instead of killing or wedging the worker (worker/entrypoints/consumer.py).
        "worker_consumer": "worker.entrypoints.consumer:CommandConsumer",
    }
