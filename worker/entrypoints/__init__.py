"""Celery: the app, its configuration, and the thin task translators."""
