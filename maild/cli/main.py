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
    "archive_import",
    "privacy",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketd", description="Email-first help-desk daemon.")
    parser.add_argument("--version", action="version", version=f"ticketd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"maild.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
