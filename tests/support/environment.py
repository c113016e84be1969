"""Where the tests run: a dedicated database and Redis database, a private queue.

Set before any orderq module reads its settings. Override with
`ORDERQ_TEST_DATABASE_URL` / `ORDERQ_TEST_BROKER_URL`.
"""

from __future__ import annotations

import os
import uuid

TEST_DATABASE_URL = os.environ.get(
    "ORDERQ_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/orderq_test"
)
TEST_BROKER_URL = os.environ.get("ORDERQ_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
SESSION_TAG = uuid.uuid4().hex[:8]


def configure_environment() -> dict[str, str]:
    """Point every orderq settings read in this process (and its children) at the test
    servers, with queues no developer worker listens to."""
    values = {
        "DATABASE_URL": TEST_DATABASE_URL,
        "CELERY_BROKER_URL": TEST_BROKER_URL,
        "ORDERQ_COMMAND_QUEUE": f"test-{SESSION_TAG}.commands",
        "ORDERQ_MAINTENANCE_QUEUE": f"test-{SESSION_TAG}.maintenance",
        "ORDERQ_RETRY_BACKOFF_SECONDS": "0.2",
        "ORDERQ_RETRY_BACKOFF_MAX_SECONDS": "1",
        "ORDERQ_PUBLISH_MAX_RETRIES": "3",
        "ORDERQ_PUBLISH_RETRY_INTERVAL_SECONDS": "0.2",
    }
    os.environ.update(values)
    return values
