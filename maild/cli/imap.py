"""``ticketd imap check``: log in to each configured mailbox and report what the daemon will see."""

from __future__ import annotations

import argparse
import sys

from maild.cli.common import add_config_option, open_app
from maild.intake import imap


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("imap", help="IMAP mailboxes")
    actions = parser.add_subparsers(dest="imap_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="log in to each mailbox; show folders, capabilities, message and unseen counts",
    )
    add_config_option(check)
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        return imap.check(app, sys.stdout, sys.stderr)
    finally:
        app.close()
