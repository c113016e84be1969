"""What a people search query is: an e-mail address, a phone number, or a name."""

from __future__ import annotations

import re
from typing import Literal

from orderq.read.pages import like_prefix
from worker.domain.contacts import email_key, phone_search_keys

QueryKind = Literal["email", "phone", "name"]

_PHONE_LIKE = re.compile(r"^\+?[0-9()./\s-]+$")


def kind_of(query: str) -> QueryKind:
    """`email` if it has an @, `phone` if it is digits and phone punctuation (3 digits
    or more), else `name`."""
    if "@" in query:
        return "email"
    if _PHONE_LIKE.match(query) and sum(ch.isdigit() for ch in query) >= 3:
        return "phone"
    return "name"


def email_prefix(query: str) -> str:
    """LIKE pattern: the lower-cased address (or its start), literally, then `%`."""
    return like_prefix(email_key(query) or "")


def phone_prefixes(query: str, region: str | None) -> tuple[str, str]:
    """Two LIKE patterns (the second may repeat the first) for a phone number's keys."""
    keys = phone_search_keys(query, region) or [""]
    patterns = [like_prefix(key) for key in keys[:2]]
    return patterns[0], patterns[-1]
