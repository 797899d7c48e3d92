"""``ticketd outbox list|retry ID``: outgoing mail and its delivery state."""

from __future__ import annotations

import argparse
import json

from maild.cli.common import add_config_option, open_app, print_rows
from maild.clock import iso
from maild.outbox.sender import retry
from maild.store.models import OutboxEntry


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("outbox", help="outgoing mail and its delivery state")
    osub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = osub.add_parser("list", help="queued and failed mail (--all: sent too)")
    add_config_option(lst)
    lst.add_argument("--all", action="store_true")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    rt = osub.add_parser("retry", help="queue a failed message again")
    add_config_option(rt)
    rt.add_argument("id", type=int)
    rt.set_defaults(func=cmd_retry)


def cmd_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    query = OutboxEntry.select(
        OutboxEntry.id,
        OutboxEntry.ticket,
        OutboxEntry.kind,
        OutboxEntry.rcpt_tos,
        OutboxEntry.status,
        OutboxEntry.attempts,
        OutboxEntry.next_attempt_at,
        OutboxEntry.last_error,
        OutboxEntry.created_at,
        OutboxEntry.sent_at,
    ).order_by(OutboxEntry.id)
    if not args.all:
        query = query.where(OutboxEntry.status != "sent")
    rows = [
        {
            "id": e.id,
            "ticket": f"{app.config.prefix}-{e.ticket_id}" if e.ticket_id else None,
            "kind": e.kind,
            "to": json.loads(e.rcpt_tos),
            "status": e.status,
            "attempts": e.attempts,
            "next_attempt_at": iso(e.next_attempt_at),
            "last_error": e.last_error,
            "created_at": iso(e.created_at),
            "sent_at": iso(e.sent_at),
        }
        for e in query
    ]
    return print_rows(
        rows,
        as_json=args.json,
        empty="outbox is empty" if args.all else "nothing queued or failed",
        line=lambda r: (
            f"#{r['id']:<6} {r['status']:<7} {r['ticket'] or '-':<10} {r['kind']:<6} "
            f"attempts={r['attempts']} to={','.join(r['to'])} {r['last_error'] or ''}"
        ),
    )


def cmd_retry(args: argparse.Namespace) -> int:
    app = open_app(args)
    entry = retry(app, args.id)
    print(f"outbox #{entry.id} queued again")
    return 0
