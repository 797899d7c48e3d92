"""``ticketd passwd USER``: a password hash for ``http.dashboard_users`` (prompted twice on a
terminal, one line from stdin otherwise); prints the line to put under ``dashboard_users:``."""

from __future__ import annotations

import argparse
import getpass
import sys

from maild.errors import TicketdError
from maild.ops.passwords import hash_password

MIN_LENGTH = 10


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("passwd", help="a password hash for http.dashboard_users")
    parser.add_argument("user")
    parser.set_defaults(func=cmd_passwd)


def cmd_passwd(args: argparse.Namespace) -> int:
    if not args.user.isprintable() or ":" in args.user or not args.user.strip():
        raise TicketdError(f"user name {args.user!r}: no colons or control characters")
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise TicketdError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_LENGTH:
        raise TicketdError(f"the password must have at least {MIN_LENGTH} characters")
    print(f'{args.user}: "{hash_password(password)}"')
    return 0
