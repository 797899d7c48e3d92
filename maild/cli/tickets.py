"""``ticketd tickets list|show``: read tickets, as a table or as JSON (DESIGN.md's contract)."""

from __future__ import annotations

import argparse
import json
import sys

from maild.cli.common import add_config_option, open_app
from maild.cli.safe_text import terminal_safe
from maild.store.custom_fields import with_field
from maild.store.models import Ticket
from maild.store.tickets import STATUSES, find_ticket, ticket_detail, ticket_summary


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tickets", help="list tickets or show one")
    tsub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = tsub.add_parser("list", help="list tickets, newest first")
    add_config_option(lst)
    lst.add_argument("--status", choices=STATUSES)
    lst.add_argument("--json", action="store_true")
    lst.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=V",
        help="only tickets whose custom field NAME is V (case ignored; repeat for several)",
    )
    lst.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")
    lst.set_defaults(func=cmd_list)
    show = tsub.add_parser("show", help="one ticket with its messages and audit trail")
    add_config_option(show)
    show.add_argument("ref", help="e.g. ACME-42")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)


def cmd_list(args: argparse.Namespace) -> int:
    app = open_app(args)
    query = Ticket.select().order_by(Ticket.id.desc())
    if args.status:
        query = query.where(Ticket.status == args.status)
    for spec in args.field:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip():
            print(f"ticketd: --field {spec!r}: expected NAME=VALUE", file=sys.stderr)
            return 64
        query = query.where(Ticket.id.in_(with_field(name.strip(), value.strip())))
    if args.limit:
        query = query.limit(args.limit)
    rows = [ticket_summary(t, app.config.prefix) for t in query]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no tickets")
        return 0
    print(f"{'REF':<12} {'STATUS':<9} {'PRIORITY':<8} {'REQUESTER':<30} SUBJECT")
    for row in rows:
        requester, subject = terminal_safe(row["requester"]), terminal_safe(row["subject"])
        print(
            f"{row['ref']:<12} {row['status']:<9} {row['priority']:<8} "
            f"{requester[:30]:<30} {subject[:60]}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    app = open_app(args)
    ticket = find_ticket(args.ref, app.config.prefix)
    data = ticket_detail(ticket, app.config.prefix)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    safe = terminal_safe
    print(f"{data['ref']}  {safe(data['subject'])}")
    print(
        safe(
            f"status {data['status']}  priority {data['priority']}  team {data['team'] or '-'}  "
            f"assignee {data['assignee'] or '-'}  tags {', '.join(data['tags']) or '-'}"
        )
    )
    print(f"requester {safe(data['requester'])}  created {data['created_at']}")
    for m in data["messages"]:
        arrow = "<-" if m["direction"] == "in" else "->"
        print(f"\n{arrow} {m['created_at']} {m['kind']} {safe(m['from'])}")
        print(safe(m["body"].strip(), multiline=True) or "(no text)")
    print("\nevents:")
    for e in data["events"]:
        detail = json.dumps(e["detail"], ensure_ascii=False)
        print(f"  {e['at']} {safe(e['actor'])} {e['action']} {safe(detail)}")
    return 0
