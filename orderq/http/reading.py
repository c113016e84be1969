"""How a GET route reads: authenticate the caller, check what it may see, run the read
in a worker thread, and turn the read side's refusals into 400 problem documents.

Who may read what (docs/http.md, "Who may read what"):

- every API key reads the business data — works, members, customers, products,
  orders, loans, stock movements, the hot report: one organisation's upstream systems
  share it (a warehouse reads the shop's orders, a front desk the catalogue);
- idempotency keys are each client's own: a listing that shows the key of the command
  behind a row shows a client its own keys (as it sent them, without the internal
  `@client/` namespace) and `null` for anybody else's;
- the ledger — every client's commands and keys — is operator data: only an operator
  key (`orderq api-keys create --client ops --operator`) reads it, and sees keys as
  stored; any other key gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.requests import Request

from orderq.http.api_keys import Caller
from orderq.http.idempotency import scoped_key
from orderq.http.intake import bearer_token
from orderq.http.problems import Problem
from orderq.http.services import services_of
from orderq.read import InvalidCursor, ReadError

T = TypeVar("T")


def read_problem(error: ReadError) -> Problem:
    """400 naming what is wrong: `invalid_cursor` or `invalid_query`."""
    reason = "invalid_cursor" if isinstance(error, InvalidCursor) else "invalid_query"
    return Problem(400, reason, str(error))


def operators_only(caller: Caller) -> None:
    if not caller.operator:
        raise Problem(
            403,
            "forbidden",
            f"client {caller.client!r} may not read operator data: this needs an operator "
            "API key (orderq api-keys create --client NAME --operator)",
        )


async def read_as_caller(
    request: Request, read: Callable[[Caller], T], *, for_operators: bool = False
) -> T:
    """`read(caller)` in a worker thread for the request's authenticated caller (401
    without one, 403 for a client key when `for_operators`); a `ReadError` is a 400."""
    services = services_of(request)
    token = bearer_token(request.headers.get("authorization"))

    def run() -> T:
        caller = services.intake.authenticate(token)
        if for_operators:
            operators_only(caller)
        try:
            return read(caller)
        except ReadError as error:
            raise read_problem(error) from None

    return await services.run(run)


def key_seen_by(caller: Caller, stored: str | None) -> str | None:
    """An idempotency key as `caller` may see it: an operator sees every key as stored;
    a client its own keys as it sent them, and None for any other key (another
    client's, or one published straight to the broker)."""
    if stored is None or caller.operator:
        return stored
    own = scoped_key(caller.client, "")
    if stored.startswith(own):
        return stored[len(own) :]
    return None


__all__ = ["key_seen_by", "operators_only", "read_as_caller", "read_problem"]
