"""One way every `orderq` command reports a problem: one `error:` line and an exit code.

Typer's own report of a bad option value, an unknown option or a missing one is a
multi-line box; commands that check values themselves print `error: …` on one line.
`OrderqGroup`, the class of the root command, catches the command-line errors of every
subcommand in one place and prints them the second way, with a pointer to `--help`
(exit 2). A database or broker that cannot be reached, or a database without the
schema, is reported the same way wherever it surfaces (exit 1) instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from typer import Abort
from typer.core import TyperGroup

from orderq.cli.console import FAILED, USAGE, describe_failure, is_server_failure, print_error
from orderq.cli.values import flag_message

try:  # typer >= 0.2x raises the errors of the click copy it carries
    from typer._click import exceptions as cli_errors
except ImportError:  # older typer raises click's own
    from click import exceptions as cli_errors  # type: ignore[no-redef]

# the error that means "no arguments: the help was printed" (click >= 8.2)
_HELP_SHOWN: Any = getattr(cli_errors, "NoArgsIsHelpError", ())


def _sentence(text: str) -> str:
    """Click's "Missing option '--qty'." as "missing option '--qty'"."""
    text = " ".join(text.split()).removeprefix("Value error, ").rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _flag(error: Any) -> str | None:
    """The option as the user typed it (`--qty`); None for an argument (its value
    starts the message already)."""
    param = getattr(error, "param", None)
    if param is None:
        return getattr(error, "param_hint", None)
    if getattr(param, "param_type_name", "") == "option" and param.opts:
        return max(param.opts, key=len)
    return None


def describe_usage_error(error: Exception) -> str:
    """One line for a command-line error, naming the flag and what is wrong with it."""
    if isinstance(error, cli_errors.BadParameter) and not isinstance(
        error, cli_errors.MissingParameter
    ):
        message = _sentence(error.message)
        flag = _flag(error)
        if flag is None:
            return message
        return flag_message(flag, message)
    return _sentence(error.format_message())  # type: ignore[attr-defined]


def _help_hint(error: Any) -> str:
    ctx = getattr(error, "ctx", None)
    return f"; see {ctx.command_path} --help" if ctx is not None else ""


class OrderqGroup(TyperGroup):
    """The root `orderq` group: command-line errors of every subcommand as one line."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            outcome = super().main(args, prog_name, complete_var, False, **extra)
        except _HELP_SHOWN:
            sys.exit(USAGE)
        except cli_errors.UsageError as error:
            print_error(describe_usage_error(error) + _help_hint(error))
            sys.exit(USAGE)
        except cli_errors.ClickException as error:
            print_error(_sentence(error.format_message()))
            sys.exit(error.exit_code)
        except Abort:
            print_error("aborted")
            sys.exit(FAILED)
        except Exception as error:
            if not is_server_failure(error):
                raise  # a bug: the traceback is what a developer needs
            print_error(describe_failure(error))
            sys.exit(FAILED)
        # without standalone mode, typer returns a command's exit code (typer.Exit)
        sys.exit(outcome if isinstance(outcome, int) else 0)
