"""How an orderq process logs: the human format (the default) or one JSON object per line.

With ORDERQ_LOG_FORMAT=json every record — orderq's, Celery's, SQLAlchemy's — becomes one
JSON object (structlog's ProcessorFormatter on the root handler): `timestamp`, `level`,
`logger`, `event` (the message), the record's structured fields (`extra=`) and, while
tracing is on, the `trace_id` of the current span. orderq's own
structured lines are one per decided command (logger `orderq.decisions`: key, type,
outcome, reason, attempt, duration, trace id) and one per maintenance run
(`orderq.maintenance`: task, result, duration, figures).

Celery's own per-task INFO lines ("received", "succeeded in") say less than the
decision line, so the JSON format leaves them out (warnings and errors still show).
"""

from __future__ import annotations

import logging
from typing import Any

from worker.adapters import tracing
from worker.settings import WorkerSettings

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PER_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")


def configure_logging(settings: WorkerSettings, level: int = logging.INFO) -> None:
    """Give the root logger orderq's format, unless the process configured logging first."""
    if settings.log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(json_formatter())
        logging.basicConfig(level=level, handlers=[handler])
        for name in PER_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    else:
        logging.basicConfig(level=level, format=HUMAN_FORMAT)


def json_formatter() -> logging.Formatter:
    """A formatter that renders any stdlib log record as one JSON object."""
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ExtraAdder(),
            add_trace_ids,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def add_trace_ids(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current trace id, when tracing is on and none is set."""
    if event.get("trace_id") is None:
        trace_id = tracing.current_trace_id()
        if trace_id is not None:
            event["trace_id"] = trace_id
        else:
            event.pop("trace_id", None)
    return event
