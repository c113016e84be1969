"""Errors as RFC 9457 problem documents, carrying orderq's machine-readable `reason`.

    HTTP/1.1 409 Conflict
    Content-Type: application/problem+json

    {"type": "urn:orderq:problem:insufficient_stock", "title": "Insufficient stock",
     "status": 409, "detail": "…", "reason": "insufficient_stock", "key": "web-42",
     "details": {"shortfalls": […]}}

`type` is a URN made from the reason (stable, never dereferenced); `reason` repeats it
plainly, the same vocabulary as `orderq status` and the ledger.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error answer: raise it anywhere in a request, the app turns it into a response."""

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = headers or {}
        self.extensions = {name: value for name, value in extensions.items() if value is not None}

    def document(self) -> dict[str, Any]:
        return {
            "type": f"urn:orderq:problem:{self.reason}",
            "title": title_of(self.reason),
            "status": self.status,
            "detail": self.detail,
            "reason": self.reason,
            **self.extensions,
        }

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.document(), status_code=self.status, headers=self.headers, media_type=PROBLEM_JSON
        )


def title_of(reason: str) -> str:
    """`insufficient_stock` -> `Insufficient stock`."""
    return reason.replace("_", " ").capitalize()
