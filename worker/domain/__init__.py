"""Pure business rules: no SQLAlchemy, no Celery, no I/O."""
