"""Fixtures for maintenance tests: settings with small batches, a runner bound to them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orderq.settings import Settings
from worker.service.runner import CommandRunner


@pytest.fixture
def tuned(settings: Settings) -> Callable[..., Settings]:
    """`tuned(maintenance_batch_size=10, ...)`: the session settings with overrides."""

    def make(**overrides: object) -> Settings:
        return settings.model_copy(update=overrides)

    return make


@pytest.fixture
def runner_for(engine, session_factory) -> Callable[[Settings], CommandRunner]:
    def make(settings: Settings) -> CommandRunner:
        return CommandRunner(settings, engine, session_factory)

    return make
