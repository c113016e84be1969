"""Reading a JSON-lines stream as bytes: each line decoded on its own, marks honoured."""

from __future__ import annotations

import codecs
import io

import pytest

from orderq.cli.command_lines import read_lines

GOOD = '{"type": "restock_product", "key": "k-1", "sku": "MUG-1", "qty": 1}'


def lines_of(data: bytes):
    reader = read_lines(io.BytesIO(data))
    return reader.encoding, reader.marked, list(reader.lines)


def test_utf8_lines_are_numbered_and_blank_ones_skipped():
    encoding, marked, lines = lines_of(f"{GOOD}\n\n   \n{GOOD}\r\n{GOOD}".encode())

    assert (encoding, marked) == ("UTF-8", False)
    assert [(line.number, line.problem) for line in lines] == [(1, None), (4, None), (5, None)]
    assert lines[1].text.strip() == GOOD


def test_one_latin1_line_is_refused_and_the_others_are_kept():
    data = (
        GOOD.encode()
        + b"\n"
        + '{"customer_ref": "José"}'.encode("latin-1")
        + b"\n"
        + GOOD.encode()
        + b"\n"
    )

    _, _, lines = lines_of(data)

    assert [line.number for line in lines] == [1, 2, 3]
    assert lines[1].problem == (
        "not UTF-8: byte 0xE9 at column 22 (invalid continuation byte); save the file as UTF-8"
    )
    assert lines[0].problem is None and lines[2].problem is None


@pytest.mark.parametrize(
    ("codec", "mark", "name"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE, "UTF-16"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "UTF-16"),
        ("utf-32-le", codecs.BOM_UTF32_LE, "UTF-32"),
        ("utf-32-be", codecs.BOM_UTF32_BE, "UTF-32"),
        ("utf-8", codecs.BOM_UTF8, "UTF-8"),
    ],
)
def test_a_byte_order_mark_names_the_encoding_of_the_whole_stream(codec, mark, name):
    text = f"{GOOD}\r\n\r\n{GOOD.replace('MUG-1', 'TASSE-À-THÉ')}\r\n"

    encoding, marked, lines = lines_of(mark + text.encode(codec))

    assert (encoding, marked) == (name, True)
    assert [(line.number, line.problem) for line in lines] == [(1, None), (3, None)]
    assert lines[0].text.strip() == GOOD
    assert "TASSE-À-THÉ" in lines[1].text


def test_utf16_is_read_across_chunk_boundaries():
    many = "".join(f'{{"type": "restock_product", "key": "k-{n}"}}\n' for n in range(5000))

    _, _, lines = lines_of(codecs.BOM_UTF16_LE + many.encode("utf-16-le"))

    assert len(lines) == 5000
    assert lines[-1].number == 5000 and '"k-4999"' in lines[-1].text


def test_utf16_with_an_unpaired_surrogate_refuses_that_line_only():
    data = codecs.BOM_UTF16_LE + f"{GOOD}\n".encode("utf-16-le") + b"\x00\xd8{\x00\n\x00"
    data += f"{GOOD}\n".encode("utf-16-le")

    _, _, lines = lines_of(data)

    assert [(line.number, line.problem) for line in lines] == [
        (1, None),
        (2, "not UTF-16: an unpaired surrogate"),
        (3, None),
    ]


def test_a_utf16_stream_cut_in_the_middle_of_a_character():
    _, _, lines = lines_of(codecs.BOM_UTF16_LE + f"{GOOD}\n{GOOD}".encode("utf-16-le")[:-1])

    assert lines[-1].number == 2
    assert lines[-1].problem == "the stream ends in the middle of a UTF-16 character"


def test_utf16_without_a_mark_is_recognised_by_its_nul_bytes():
    _, _, lines = lines_of(f"{GOOD}\n".encode("utf-16-le"))

    assert lines[0].problem is not None
    assert lines[0].problem.startswith("contains NUL bytes: UTF-16 without a byte-order mark?")


def test_an_empty_stream_has_no_lines():
    assert lines_of(b"") == ("UTF-8", False, [])
