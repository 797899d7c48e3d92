"""The ``ticketd`` command: parse arguments, run a subcommand, turn user errors into one line.

Each subcommand lives in its own module exposing ``register(subparsers)``; the handler it sets as
``func`` takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

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
)
# A command whose module has another name (``import`` is a Python keyword).
MODULES = {"import": "archive_import"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` the parser of that one subcommand.

    Each subcommand's module is imported only when its parser is built, so ``ticketd tickets show``
    never loads the daemon, the report's charts or the mail pipeline (a start-up cost of a second).
    """
    parser = argparse.ArgumentParser(prog="ticketd", description="Email-first help-desk daemon.")
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
    # A known subcommand gets only its own parser; anything else (help, a typo) gets them all, so
    # the usage message lists every command.
    parser = build_parser(chosen_command(words))
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
