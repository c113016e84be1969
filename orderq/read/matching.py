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


# Words too common to narrow a trigram search (they match nearly every title); they
# still count in the ranking and in full-text matching.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "de",
        "del",
        "der",
        "des",
        "di",
        "du",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "la",
        "le",
        "les",
        "of",
        "on",
        "or",
        "the",
        "to",
        "und",
        "von",
        "with",
    ]
)
MAX_FUZZY_WORDS = 5
_WORD = re.compile(r"\w+")


def fuzzy_words(query: str) -> list[str]:
    """The words each of which must resemble a word of the text (trigram word
    similarity): up to five, stop words and words under three letters left out; the
    whole query if nothing is left. Requiring every word — rather than the query as a
    whole — keeps a common first word ("grace …", "the …") from matching thousands of
    rows, so only a few candidates are ranked."""
    words = [w for w in _WORD.findall(query.lower()) if len(w) >= 3 and w not in STOP_WORDS]
    return words[:MAX_FUZZY_WORDS] or [query.lower()]


def every_word_resembles(expression: str, count: int) -> str:
    """`orderq_fold(:word0) <% expr AND …`: indexable by a gin_trgm_ops index on `expr`."""
    return " AND ".join(f"orderq_fold(:word{n}) <% {expression}" for n in range(count))


def word_params(words: list[str]) -> dict[str, str]:
    return {f"word{n}": word for n, word in enumerate(words)}
