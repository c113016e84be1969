"""Every `orderq` command answers a command-line mistake the same way: one line on
stderr naming the flag, a pointer to --help, exit 2 — and nothing is sent or read.

The commands are found by walking the CLI, so a command added later is covered too.
All of these fail while parsing, before any server is asked (no I/O).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from types import UnionType
from typing import Annotated, Any, get_args, get_origin

import pytest
import typer
from typer.models import ArgumentInfo, OptionInfo
from typer.testing import CliRunner

from orderq.cli.main import app

runner = CliRunner()


def _commands(typer_app: typer.Typer, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    for info in typer_app.registered_commands:
        yield (*path, info.name or info.callback.__name__), info.callback
    for group in typer_app.registered_groups:
        yield from _commands(group.typer_instance, (*path, group.name))


def _base(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, UnionType):
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _flag(info: OptionInfo) -> str:
    """The option's long name (typer keeps the first name of `typer.Option("--x")` as
    its `default` when the default is given in the signature)."""
    names = [n for n in (info.default, *info.param_decls) if isinstance(n, str)]
    return max((n for n in names if n.startswith("-")), key=len)


def _parameters(callback) -> Iterator[tuple[str, Any, Any, bool]]:
    """(name, base type, typer info, required) for each parameter of a command."""
    hints = typing.get_type_hints(callback, include_extras=True)
    defaults = callback.__defaults__ or ()
    names = callback.__code__.co_varnames[: callback.__code__.co_argcount]
    required = set(names[: len(names) - len(defaults)])
    for name in names:
        hint = hints[name]
        if get_origin(hint) is Annotated:
            base, *extras = get_args(hint)
            info = next(e for e in extras if isinstance(e, OptionInfo | ArgumentInfo))
            yield name, _base(base), info, name in required


COMMANDS = sorted(_commands(app), key=lambda c: c[0])
NUMERIC = [
    pytest.param(path, _flag(info), callback, id=" ".join(path) + " " + _flag(info))
    for path, callback in COMMANDS
    for _, base, info, _ in _parameters(callback)
    if isinstance(info, OptionInfo) and base in (int, float)
]


PLAUSIBLE = {"--line": "MUG-1:1", "--order": "ORD-000001"}


def _required_arguments(callback, but: str | None = None) -> list[str]:
    """Plausible values for every required parameter except the option `but`."""
    args: list[str] = []
    for _, base, info, required in _parameters(callback):
        if not required or (isinstance(info, OptionInfo) and _flag(info) == but):
            continue
        value = "X" if base is str else "1"
        if isinstance(info, OptionInfo):
            args += [_flag(info), PLAUSIBLE.get(_flag(info), value)]
        else:
            args.insert(0, value)
    return args


def _one_error_line(result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_the_walk_finds_the_commands_and_their_numeric_options():
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"publish restock", "orders list", "status", "dead-letters replay", "up"} <= paths
    assert len(NUMERIC) >= 15


@pytest.mark.parametrize(("path", "flag", "callback"), NUMERIC)
def test_every_numeric_option_refuses_a_non_number_in_one_line(path, flag, callback):
    result = runner.invoke(app, [*path, *_required_arguments(callback, but=flag), flag, "abc"])

    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line.startswith(f"error: {flag} 'abc' is not a "), line
    assert line.endswith(f"; see orderq {' '.join(path)} --help")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("path", "callback"), [pytest.param(*c, id=" ".join(c[0])) for c in COMMANDS]
)
def test_every_command_refuses_an_unknown_option_in_one_line(path, callback):
    result = runner.invoke(app, [*path, *_required_arguments(callback), "--no-such-flag"])

    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line.startswith("error: no such option: --no-such-flag"), line
    assert line.endswith(f"; see orderq {' '.join(path)} --help")


REQUIRED = [
    pytest.param(path, info, callback, id=" ".join(path) + " " + name)
    for path, callback in COMMANDS
    for name, _, info, required in _parameters(callback)
    if required and isinstance(info, OptionInfo)
]


@pytest.mark.parametrize(("path", "info", "callback"), REQUIRED)
def test_a_missing_required_option_is_named_in_one_line(path, info, callback):
    flag = _flag(info)
    result = runner.invoke(app, [*path, *_required_arguments(callback, but=flag)])

    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line.startswith(f"error: missing option '{flag}'"), line


UPSERT = ["publish", "upsert-product", "--key", "k", "--sku", "A", "--name", "n"]
REGISTER = ["publish", "register-member", "--key", "k", "--member", "M-1", "--name", "Ann"]
PLACE = ["publish", "place-order", "--key", "k", "--customer", "c", "--line", "MUG-1:1"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            [*UPSERT, "--price", "NaN"],
            "error: --price 'NaN' is not a number (expected e.g. 12.50)",
        ),
        (
            [*UPSERT, "--price", "250000000"],
            "error: --price '250000000' is over the limit: at most 100,000,000.00",
        ),
        (
            ["publish", "place-order", "--key", "k", "--customer", "c", "--line", "MUG"],
            "error: --line 'MUG' must look like SKU:QTY (e.g. MUG-1:2)",
        ),
        (["orders", "list", "--status", "lost"], "error: --status 'lost' is not one of 'placed'"),
        (["orders", "show", "42"], "error: '42' is not an order number (like ORD-000042)"),
        (
            [*REGISTER, "--email", "ada.example.org"],
            "error: --email 'ada.example.org' is not an e-mail address (like ada@example.org)",
        ),
        ([*REGISTER, "--phone", "call me"], "error: --phone 'call me' is not a phone number"),
        ([*PLACE, "--customer-email", "x@"], "error: --customer-email 'x@' is not an e-mail"),
        ([*PLACE, "--customer-phone", "12"], "error: --customer-phone '12' is not a phone number"),
        (
            [*PLACE, "--customer-name", "   "],
            "error: --customer-name: string should have at least 1 character",
        ),
        ([*PLACE, "--customer-email", "a@b.c" * 60], "error: --customer-email: string should"),
        (["orders", "list", "--cursor", "x"], "error: --cursor 'x' is not a cursor printed by"),
        (["no-such-command"], "error: no such command 'no-such-command'; see orderq --help"),
        (["dead-letters", "list", "--type", "teleport"], "error: --type 'teleport' is not a"),
        (["worker", "--loglevel", "loud"], "error: --loglevel 'loud' is not a log level"),
        (
            ["publish", "restock", "--key", "has space", "--sku", "A", "--qty", "1"],
            "error: --key 'has space' is not an idempotency key: printable ASCII, no spaces",
        ),
    ],
)
def test_bad_values_read_as_one_line(args, line):
    result = runner.invoke(app, args)

    assert result.exit_code == 2
    assert _one_error_line(result).startswith(line)


def test_no_arguments_shows_the_help():
    result = runner.invoke(app, [])

    assert result.exit_code == 2
    assert "publish-file" in result.stdout and "Usage: orderq" in result.stdout


def test_an_orders_cursor_printed_for_another_status_is_refused_before_any_server():
    from datetime import UTC, datetime

    from orderq.read.cursors import CursorCodec

    placed = CursorCodec().encode("orders_in_status", {"status": "placed"}, [datetime.now(UTC), 7])

    result = runner.invoke(app, ["orders", "list", "--status", "paid", "--cursor", placed])

    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "is not a cursor printed by orderq orders list --status paid" in line
    assert line.endswith("the cursor belongs to the same listing with other filters")
