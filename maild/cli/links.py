"""``ticketd links revoke REF``: invalidate every requester status link of a ticket issued so far.

Mail sent afterwards carries new links that work; anyone who lost theirs asks for fresh ones on
the status page (``POST /t/lookup``).
"""

from __future__ import annotations

import argparse
import re

from maild.cli.common import add_config_option, open_app
from maild.errors import NotFoundError, TicketdError
from maild.store.db import write_tx
from maild.store.models import Ticket
from maild.web.links import revoke


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("links", help="requester status links")
    lsub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    rev = lsub.add_parser("revoke", help="invalidate a ticket's status links issued so far")
    add_config_option(rev)
    rev.add_argument("ref")
    rev.set_defaults(func=cmd_revoke)


class UsageError(TicketdError):
    exit_code = 64


def cmd_revoke(args: argparse.Namespace) -> int:
    app = open_app(args)
    match = re.fullmatch(rf"{re.escape(app.config.prefix)}-(\d{{1,12}})", args.ref.strip().upper())
    if not match:
        raise UsageError(f"{args.ref!r} is not a ticket reference like {app.config.prefix}-12")
    with write_tx(app.db):
        ticket = Ticket.get_or_none(Ticket.id == int(match.group(1)))
        if ticket is None:
            raise NotFoundError(f"ticket {args.ref} does not exist")
        revoke(ticket, app.clock.now())
    print(f"status links of {args.ref.upper()} issued until now no longer open it")
    return 0
