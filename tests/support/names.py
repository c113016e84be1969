"""What this test session is called, and the servers it was told to use — plain values,
importable without touching any server (the leftovers check runs outside pytest).

Everything a session names on a shared server carries its namespace `test-<tag>`:
queues, worker hostnames, the scratch folder. The cleanup finds its own things by it.
"""

from __future__ import annotations

import os
import re
import uuid

CONFIGURED_DATABASE_URL = os.environ.get(
    "ORDERQ_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/orderq_test"
)
CONFIGURED_BROKER_URL = os.environ.get("ORDERQ_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("ORDERQ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

SESSION_TAG = uuid.uuid4().hex[:8]
NAMESPACE = f"test-{SESSION_TAG}"
#: any session's namespace, in a queue, key or host name
ANY_NAMESPACE = re.compile(r"test-([0-9a-f]{8})")
