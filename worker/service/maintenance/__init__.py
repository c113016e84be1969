"""Maintenance jobs run by Celery beat: each takes an advisory lock, works in bounded
batches and can be run again safely."""
