"""The orderq worker: runs each command in one PostgreSQL transaction, exactly once."""
