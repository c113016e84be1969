"""Maintenance: Celery tasks on the maintenance queue, scheduled by beat."""
