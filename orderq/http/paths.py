"""Path convertors the routes share."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class AnyText(Convertor[str]):
    """A path segment that may hold anything, `/` and newlines included: Starlette's
    `path` stops at a newline, and an idempotency key or a customer reference may hold
    a `/` (sent percent-encoded). Followed by a fixed suffix, the match backtracks to
    it: `/v1/customers/{ref:anytext}/orders` reads `a/b` from `/v1/customers/a/b/orders`."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", AnyText())
