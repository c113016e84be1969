"""Settings that would let Redis hand a running command to a second worker are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orderq.settings import Settings
from worker.service.failpoints import parse_failpoints


def test_visibility_timeout_must_outlast_a_task_and_its_longest_retry_countdown():
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT"):
        Settings(
            redis_visibility_timeout_seconds=100,
            task_time_limit_seconds=60,
            task_soft_time_limit_seconds=50,
            retry_backoff_max_seconds=60,
        )


def test_soft_time_limit_must_come_before_the_hard_one():
    with pytest.raises(ValidationError, match="SOFT_TIME_LIMIT"):
        Settings(task_time_limit_seconds=10, task_soft_time_limit_seconds=10)


def test_defaults_are_consistent():
    settings = Settings()
    assert settings.redis_visibility_timeout_seconds > (
        settings.task_time_limit_seconds + settings.retry_backoff_max_seconds
    )
    assert settings.max_unknown_error_attempts <= settings.max_attempts


def test_a_bad_failpoint_names_the_entry_and_the_allowed_actions():
    with pytest.raises(
        ValueError, match=r"'after_lock=explode'.*bug, exit, hang, kill, pause, raise, sleep"
    ):
        parse_failpoints("after_lock=explode")
