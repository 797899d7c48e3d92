"""``ticketd inject [FILE...]``: spool messages from files or stdin, then process them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maild.cli.common import add_config_option, config_of
from maild.errors import TicketdError
from maild.intake.pipe import EX_TEMPFAIL, inject


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("inject", help="spool and process messages from files or stdin")
    add_config_option(parser)
    parser.add_argument("files", nargs="*", type=Path, help="message files (default: stdin)")
    parser.add_argument(
        "--spool-only",
        action="store_true",
        help="only spool; leave processing to the running daemon",
    )
    parser.add_argument("--from", dest="mail_from", default="", help="envelope sender")
    parser.add_argument("--rcpt", action="append", default=[], help="envelope recipient")
    parser.set_defaults(func=cmd_inject)


def cmd_inject(args: argparse.Namespace) -> int:
    from maild.app import App

    config = config_of(args)
    try:
        app = App.open(config)
    except TicketdError as exc:
        # The MTA must keep the message and retry: a database we cannot open is temporary.
        print(f"ticketd: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    try:
        return inject(
            app,
            args.files,
            mail_from=args.mail_from,
            rcpt_tos=args.rcpt,
            process=not args.spool_only,
        )
    finally:
        app.close()
