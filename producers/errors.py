"""Every error orderq's producer side raises derives from `OrderqError`.

Upstream code can catch the root, or the one it can act on:

- `InvalidCommand`: the command breaks the contract (its `problem` names the field);
  fix it, nothing was recorded or sent;
- `PublishError`: the broker or the database did not take the command — maybe not
  sent; publishing the same key again is always safe;
- `ConfigurationError`: the settings cannot be used as they are (the message says
  which environment variable to change).
"""

from __future__ import annotations


class OrderqError(Exception):
    """The root of orderq's own errors."""


class ConfigurationError(OrderqError, ValueError):
    """The settings cannot be used as they are (the message says what to change)."""


class InvalidCommand(OrderqError, ValueError):
    """A message that is not a valid command; `problem` names the offending field."""

    def __init__(self, problem: str, key: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.key = key


class PublishError(OrderqError, RuntimeError):
    """The command may not have been sent (broker or database failure); send it again."""
