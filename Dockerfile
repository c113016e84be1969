# One image for every orderq process; docker-compose.yml picks the command.
#
# The image holds what `pip install orderq` gives a production host: the wheel built from
# this repository, installed without extras (no embedded servers, no test tools) — the
# same thing `.ci/production_install.sh` builds, installs and runs against real servers.

FROM python:3.12-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY producers ./producers
COPY worker ./worker
COPY orderq ./orderq
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Flower's task history (a volume in compose); the folder is created below
    ORDERQ_FLOWER_STATE_FILE=/app/.orderq/flower/state.db

# Non-editable, no extras: migrations ship inside the package (orderq.migrations).
COPY --from=wheel /dist /tmp/dist
RUN pip install /tmp/dist/*.whl \
    && rm -rf /tmp/dist

# The app user owns its working folder (beat's schedule file) and Flower's state folder.
# A named volume mounted on /app/.orderq/flower starts as a copy of this folder, owner
# included, so Flower can write its state there.
RUN useradd --create-home --uid 10001 orderq \
    && mkdir -p /app/.orderq/flower /app/.orderq/metrics \
    && chown -R orderq:orderq /app
WORKDIR /app
USER orderq

CMD ["orderq", "worker", "--concurrency", "2"]
