# One image for every orderq process; docker-compose.yml picks the command.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml alembic.ini README.md* ./
COPY producers ./producers
COPY worker ./worker
COPY migrations ./migrations
# Editable install: `orderq migrate` finds alembic.ini and migrations/ next to the code.
RUN pip install -e . \
    && useradd --create-home --uid 10001 orderq \
    && mkdir -p /app/.orderq/metrics \
    && chown -R orderq /app

USER orderq
CMD ["orderq", "worker", "--concurrency", "2"]
