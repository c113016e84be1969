"""The bounds the raw-message guard applies, and the settings that keep them consistent."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orderq.settings import Settings
from producers.commands import InvalidCommand
from producers.wire import check_message
from worker.service.runner import backoff_delay


def test_a_message_may_wait_300_s_unless_the_visibility_timeout_is_shorter():
    assert Settings().message_delay_limit == 300
    short = Settings(
        redis_visibility_timeout_seconds=6,
        task_time_limit_seconds=4,
        task_soft_time_limit_seconds=3,
        retry_backoff_max_seconds=1,
    )
    assert short.message_delay_limit == 1  # still room for the worker's own retries


def test_a_delay_that_would_outlive_the_visibility_timeout_is_refused():
    with pytest.raises(ValidationError, match="MAX_MESSAGE_DELAY"):
        Settings(max_message_delay_seconds=3500)


def test_a_delay_shorter_than_the_retry_backoff_is_refused():
    with pytest.raises(ValidationError, match="RETRY_BACKOFF_MAX"):
        Settings(max_message_delay_seconds=10, retry_backoff_max_seconds=60)


def test_the_time_limit_floor_stays_below_the_soft_limit():
    assert Settings().message_time_limit_floor == 5
    assert Settings(
        task_time_limit_seconds=4, task_soft_time_limit_seconds=3
    ).message_time_limit_floor == pytest.approx(1.5)
    with pytest.raises(ValidationError, match="MIN_MESSAGE_TIME_LIMIT"):
        Settings(min_message_time_limit_seconds=200)


def test_half_an_emoji_is_an_invalid_command_naming_the_field_and_keeping_the_key():
    message = {"key": "K-9", "type": "place_order", "customer_ref": "Ana \ud83d"}

    with pytest.raises(InvalidCommand) as refused:
        check_message(message, 65536)

    assert refused.value.problem.startswith("customer_ref: contains half of a surrogate pair")
    assert refused.value.key == "K-9"


def test_a_retries_header_cannot_make_the_backoff_explode():
    assert 0 < backoff_delay(10**30, 1.0, 60.0) <= 60.0
