"""The ``ticketd`` command: parse arguments, run a subcommand, turn user errors into one line.

Each subcommand lives in its own module exposing ``register(subparsers)``; the handler it sets as
``func`` takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from maild import __version__
from maild.errors import TicketdError

COMMANDS = (
    "run",
    "inject",
    "tickets",
    "spool",
    "outbox",
    "rules",
    "sla",
    "imap",
    "report",
    "status",
    "backup",
    "restore",
    "import",
    "privacy",
    "links",
    "passwd",
    "webhooks",
    "kb",
    "triage",
)
# A command whose module has another name (``import`` is a Python keyword).
MODULES = {"import": "archive_import"}


class Parser(argparse.ArgumentParser):
    """argparse's parser, minus an import of ``shutil`` (with zlib, bz2 and lzma) at start-up.

    While the parser is built, argparse makes help formatters only to check an option's metavar
    (``add_argument``) and to name a subcommand's parser ("ticketd tickets", ``add_subparsers``),
    and each formatter asks ``shutil`` for the terminal's width, which neither needs: they get a
    fixed one. Help, usage and error messages are formatted as before, at the terminal's width.
    The subcommands' parsers are of this class too (``add_subparsers`` uses the parent's class).
    """

    _checking = False

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def add_subparsers(self, **kwargs: Any) -> argparse._SubParsersAction:
        self._checking = True
        try:
            return super().add_subparsers(**kwargs)
        finally:
            self._checking = False

    def _get_formatter(self) -> argparse.HelpFormatter:
        if self._checking:
            return self.formatter_class(prog=self.prog, width=80)  # type: ignore[call-arg]
        return super()._get_formatter()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` the parser of that one subcommand.

    Each subcommand's module is imported only when its parser is built, so ``ticketd tickets show``
    never loads the daemon, the report's charts or the mail pipeline (a start-up cost of a second).
    """
    parser = Parser(prog="ticketd", description="Email-first help-desk daemon.")
    parser.add_argument("--version", action="version", version=f"ticketd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in (only,) if only in COMMANDS else COMMANDS:
        importlib.import_module(f"maild.cli.{MODULES.get(name, name)}").register(sub)
    return parser


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (its first word that is not an option), if it is one of ours."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    # Building the parser imports the command's modules: tens of thousands of objects that live as
    # long as the process, which the cyclic garbage collector would walk again and again (a tenth
    # of a read command's time). It is off meanwhile, and what was built is frozen, so later
    # collections look only at the command's own objects; unfrozen at the end, for a caller that
    # runs several commands in one process (the tests).
    enabled = gc.isenabled()
    gc.disable()
    try:
        # A known subcommand gets only its own parser; anything else (help, a typo) gets them
        # all, so the usage message lists every command.
        parser = build_parser(chosen_command(words))
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
    try:
        return run_command(parser, words)
    finally:
        gc.unfreeze()


def run_command(parser: argparse.ArgumentParser, words: Sequence[str]) -> int:
    """Parse ``words`` and run the subcommand; a user error becomes one line and its status."""
    args = parser.parse_args(words)
    # The daemon logs at config's log_level (cli/run.py); a one-shot command prints its own result
    # and logs only warnings and errors.
    logging.basicConfig(
        level=logging.INFO if args.command == "run" else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    try:
        return int(args.func(args) or 0)
    except TicketdError as exc:
        print(f"ticketd: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
