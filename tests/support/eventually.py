"""The one way tests wait: poll a real condition until it holds or a deadline passes.

    eventually(lambda: stock_of(engine, sku) == (5, 0), what="stock back to 5")
    status = eventually(lambda: lookup(engine, key), until=lambda s: s.is_terminal,
                        what=f"an outcome for {key}")

A sleep is never a barrier: every wait names the condition it waits for, and a test
whose condition never comes fails with that name (and the last value seen) instead of
racing on. Built on tenacity, like the production code's bounded waits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")

_UNSET: Any = object()


def eventually(
    probe: Callable[[], T],
    *,
    until: Callable[[T], bool] = bool,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.05,
) -> T:
    """Call `probe` until `until(result)` holds; return that result.

    Raises AssertionError naming `what` and the last result after `timeout` seconds.
    Exceptions from `probe` propagate at once (a broken probe is a bug, not a wait).
    """
    last: list[Any] = [_UNSET]

    def unmet(result: T) -> bool:
        last[0] = result
        return not until(result)

    try:
        for attempt in Retrying(
            retry=retry_if_result(unmet),
            stop=stop_after_delay(timeout),
            wait=wait_fixed(interval),
        ):
            with attempt:
                result = probe()
            if not attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
                attempt.retry_state.set_result(result)
    except RetryError:
        seen = "nothing" if last[0] is _UNSET else repr(last[0])[:500]
        raise AssertionError(f"{what}: not within {timeout:g}s (last seen: {seen})") from None
    return result
