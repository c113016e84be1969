"""A JSON-lines stream of commands, read as bytes: numbered lines, each decoded alone.

`orderq publish-file FILE` and `orderq publish-file -` (stdin) both read through
`read_lines`, so a file and a pipe with the same bytes give the same result:

- No byte-order mark: UTF-8, one line at a time. A line that is not UTF-8 (say one
  Latin-1 `é`) is refused with its number and the byte at fault; the others still go.
- A byte-order mark names the encoding of the whole stream: UTF-8 (the mark is
  dropped), UTF-16 or UTF-32, either byte order — what Windows editors and
  PowerShell's `>` write. Lines are then decoded in that encoding.
- A line with NUL bytes in a stream without a mark is refused with a hint: that is
  what UTF-16 saved without a mark looks like.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from producers.commands import Command, InvalidCommand, parse_command

# longest first: the UTF-32 little-endian mark starts with the UTF-16 one
_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
_CHUNK = 64 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Line:
    """One non-blank line: its text, or why it cannot be read."""

    number: int
    text: str = ""
    problem: str | None = None


@dataclass(frozen=True)
class CommandLines:
    """The lines of a stream and the encoding they are read in."""

    encoding: str
    marked: bool  # the stream started with a byte-order mark
    lines: Iterator[Line]


def read_lines(stream: BinaryIO) -> CommandLines:
    """Number and decode the lines of a byte stream, lazily (a pipe is read as it comes)."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[arg-type]
    head = buffered.peek(4)[:4]
    for mark, codec, name in _MARKS:
        if head.startswith(mark):
            buffered.read(len(mark))
            if codec == "utf-8":
                return CommandLines(name, True, _utf8_lines(buffered, marked=True))
            return CommandLines(name, True, _decoded_lines(buffered, codec, name))
    return CommandLines("UTF-8", False, _utf8_lines(buffered, marked=False))


def _utf8_lines(stream: io.BufferedReader, *, marked: bool) -> Iterator[Line]:
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            bad = raw[error.start : error.start + 1].hex().upper()
            yield Line(
                number,
                problem=f"not UTF-8: byte 0x{bad} at column {error.start + 1} ({error.reason});"
                " save the file as UTF-8",
            )
            continue
        if not text.strip():
            continue
        if "\x00" in text and not marked:
            yield Line(
                number,
                problem="contains NUL bytes: UTF-16 without a byte-order mark? "
                "Save the file as UTF-8",
            )
            continue
        yield Line(number, text)


def _decoded_lines(stream: io.BufferedReader, codec: str, name: str) -> Iterator[Line]:
    # surrogatepass: an unpaired surrogate reaches the line and refuses that line only
    decoder = codecs.getincrementaldecoder(codec)(errors="surrogatepass")
    pending, number = "", 0
    while chunk := stream.read1(_CHUNK):
        *complete, pending = (pending + decoder.decode(chunk)).split("\n")
        for text in complete:
            number += 1
            if line := _checked(number, text, name):
                yield line
    number += 1
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        yield Line(number, problem=f"the stream ends in the middle of a {name} character")
        return
    if line := _checked(number, pending, name):
        yield line


def _checked(number: int, text: str, name: str) -> Line | None:
    if not text.strip():
        return None
    if _SURROGATE.search(text):
        return Line(number, problem=f"not {name}: an unpaired surrogate")
    return Line(number, text)


def parse_line(text: str) -> Command:
    """One JSON line as a validated command, or `InvalidCommand` saying what is wrong."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidCommand(f"invalid JSON ({error.msg} at column {error.colno})") from None
    return parse_command(message)
