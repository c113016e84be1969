"""How phone numbers and e-mail addresses are compared: one spelling per number.

A phone number is stored as typed (for people) and as its *digits key* (for search):
the international number's digits, country code first, e.g. `442079460000` for
`020 7946 0000` in the UK, `+44 (0)20 7946-0000`, `0044 20 7946 0000` or
`+44 20 79460000`. The same function runs on write and on the query, so any spelling
finds any other.

The "(0)" in `+44 (0)20 …` is the national trunk prefix written inside an
international number: it is dialled only from inside the country, so it is dropped.
A number written nationally (`020 …`) needs a country to become international: the
`region` (ORDERQ_PHONE_REGION, e.g. "GB"); its trunk prefix `0` is replaced by the
country code. Parsing is libphonenumber's (the `phonenumbers` package); a fragment too
short to be a number (`0207`, typed to search by prefix) gets the same treatment by
hand, so a prefix of a number keys to a prefix of its key.
"""

from __future__ import annotations

import re

import phonenumbers

_NOT_DIGITS = re.compile(r"\D")
_TRUNK_IN_INTERNATIONAL = re.compile(r"\(\s*0\s*\)")


def phone_key(raw: str | None, region: str | None) -> str | None:
    """The digits key of a phone number (or of the start of one); None if it has no digit."""
    if raw is None:
        return None
    text = _international(raw)
    number = _parsed(text, region)
    if number is not None:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    return _fragment_key(text, region)


def _international(raw: str) -> str:
    """Drop a "(0)" trunk prefix; spell the 00 international call prefix as "+"."""
    text = _TRUNK_IN_INTERNATIONAL.sub(" ", raw.strip())
    return "+" + text[2:] if text.startswith("00") else text


def _parsed(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    """The number, if `text` is a whole valid one (international, or national in `region`)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _fragment_key(text: str, region: str | None) -> str | None:
    digits = _NOT_DIGITS.sub("", text)
    if not digits:
        return None
    if text.startswith("+"):
        return digits
    if region:
        country = phonenumbers.country_code_for_region(region.upper())
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
        trunk = metadata.national_prefix if metadata is not None else None
        if country and trunk and digits.startswith(trunk):
            return f"{country}{digits[len(trunk) :]}"
    return digits


def email_key(raw: str | None) -> str | None:
    """E-mail addresses compare case-insensitively (in practice, every provider does)."""
    if raw is None:
        return None
    return raw.strip().lower() or None


def phone_search_keys(raw: str, region: str | None) -> list[str]:
    """The digits keys a typed phone number (or its start) may be stored under.

    The key `phone_key` gives, and for an international number also its national
    spelling's digits (`+44 20 7946 0000` → `02079460000`): a number stored while no
    region was configured kept its national digits.
    """
    keys = []
    if (primary := phone_key(raw, region)) is not None:
        keys.append(primary)
    number = _parsed(_international(raw), region)
    if number is not None:
        national = _NOT_DIGITS.sub(
            "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        )
        if national and national not in keys:
            keys.append(national)
    return keys
