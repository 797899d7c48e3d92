"""``ticketd tickets list|show|set|merge``: read the queue, and change tickets as an admin.

``list`` and ``show`` only read (a fixed number of queries per page, see maild.store.listing);
``set`` and ``merge`` change a ticket in one transaction, validated against the rules files like
an agent's commands, each change an audit event whose actor is the admin's user name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from typing import Any

from maild.cli.common import add_config_option, open_app
from maild.cli.safe_text import terminal_safe
from maild.store.listing import DEFAULT_SORT, SORT_KEYS, Filters
from maild.store.tickets import PRIORITIES, STATUSES

_SINCE = re.compile(r"^(\d{1,5})\s*(h|d|w)$", re.IGNORECASE)
SET_OPTIONS = ("--status", "--priority", "--team", "--assign", "--field", "--config", "--tag")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tickets", help="list tickets, show one, change one (admins)")
    tsub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = tsub.add_parser("list", help="list tickets, newest first")
    add_config_option(lst)
    lst.add_argument("--status", action="append", choices=STATUSES, default=[])
    lst.add_argument("--team", help="only this team's tickets (case ignored)")
    lst.add_argument(
        "--assignee", metavar="EMAIL", help="only tickets assigned to EMAIL; 'me' with --as; 'none'"
    )
    lst.add_argument("--as", dest="as_email", metavar="EMAIL", help="who 'me' is in --assignee")
    lst.add_argument("--tag", action="append", default=[], help="only tickets with this tag")
    lst.add_argument("--priority", action="append", choices=PRIORITIES, default=[])
    lst.add_argument("--since", metavar="T", help="created since: 12h, 30d, 2w or a date")
    lst.add_argument("--search", metavar="TEXT", help="in the subject and the visible text")
    lst.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=V",
        help="only tickets whose custom field NAME is V (case ignored; repeat for several)",
    )
    lst.add_argument(
        "--sort",
        default=DEFAULT_SORT,
        metavar="K",
        help=f"{', '.join(SORT_KEYS)}; KEY:desc or --sort=-KEY reverses (default {DEFAULT_SORT})",
    )
    lst.add_argument("--limit", type=int, default=50, help="at most this many (0: all)")
    lst.add_argument("--offset", type=int, default=0, help="skip this many first")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    show = tsub.add_parser("show", help="one ticket with its messages and audit trail")
    add_config_option(show)
    show.add_argument("ref", help="e.g. ACME-42")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)
    setp = tsub.add_parser("set", help="change a ticket's fields (audited with your user name)")
    add_config_option(setp)
    setp.add_argument("ref", help="e.g. ACME-42")
    setp.add_argument("--status", help="open, pending, resolved, closed or a custom status")
    setp.add_argument("--priority", choices=PRIORITIES)
    setp.add_argument("--team")
    setp.add_argument("--assign", metavar="EMAIL", help="an agent's address or name; 'none'")
    setp.add_argument(
        "--field", action="append", default=[], metavar="NAME=V", help="a custom field's value"
    )
    setp.add_argument(
        "--tag",
        nargs=argparse.REMAINDER,
        default=[],
        metavar="+x -y",
        help="tags to add (+x or x) and remove (-y); the other options may follow",
    )
    setp.set_defaults(func=cmd_set, parser=setp)
    merge = tsub.add_parser("merge", help="merge ticket REF into INTO (audited)")
    add_config_option(merge)
    merge.add_argument("ref", help="the duplicate, e.g. ACME-41")
    merge.add_argument("into", help="the ticket it goes into, e.g. ACME-12")
    merge.set_defaults(func=cmd_merge)


def _fail(message: str, code: int = 64) -> int:
    print(f"ticketd: {message}", file=sys.stderr)
    return code


def _since(value: str, now: dt.datetime) -> dt.datetime:
    """``30d``/``12h``/``2w`` before now, or an ISO date/time (naive UTC); ValueError if neither."""
    found = _SINCE.match(value.strip())
    if found:
        unit = {"h": 3600, "d": 86400, "w": 7 * 86400}[found.group(2).lower()]
        return now - dt.timedelta(seconds=int(found.group(1)) * unit)
    parsed = dt.datetime.fromisoformat(value.strip())
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def filters_of(args: argparse.Namespace) -> Filters | str:
    """The list's filters, or the message for a bad option."""
    assignee = args.assignee
    if assignee is not None:
        if assignee.lower() == "me":
            if not args.as_email:
                return "--assignee me needs --as EMAIL (who you are)"
            assignee = args.as_email
        elif assignee.lower() == "none":
            assignee = ""
    fields = []
    for spec in args.field:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip():
            return f"--field {spec!r}: expected NAME=VALUE"
        fields.append((name.strip(), value.strip()))
    since = None
    if args.since:
        try:
            since = _since(args.since, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        except ValueError:
            return f"--since {args.since!r}: expected 12h, 30d, 2w or a date like 2026-11-01"
    if args.limit < 0 or args.offset < 0:
        return "--limit and --offset must not be negative"
    if args.search is not None and not args.search.strip():
        return "--search needs some text"
    return Filters(
        status=tuple(args.status),
        team=args.team,
        assignee=assignee.strip().lower() if assignee is not None else None,
        tag=tuple(args.tag),
        priority=tuple(args.priority),
        since=since,
        search=args.search.strip() if args.search else None,
        fields=tuple(fields),
    )


def cmd_list(args: argparse.Namespace) -> int:
    from maild.store.listing import list_page, order_by

    filters = filters_of(args)
    if isinstance(filters, str):
        return _fail(filters)
    try:
        order_by(args.sort)
    except ValueError as exc:
        return _fail(f"--sort: {exc}")
    app = open_app(args)
    page = list_page(
        app.config.prefix,
        filters,
        sort=args.sort,
        limit=args.limit,
        offset=args.offset,
        count=not args.json,  # the JSON is the rows alone
    )
    if args.json:
        print(json.dumps(page.rows, indent=2, ensure_ascii=False))
        return 0
    if not page.rows:
        print("no tickets" + (f" (offset {args.offset} of {page.total})" if page.total else ""))
        return 0
    import shutil  # the table's width only: --json needs no shutil (and its zlib, bz2, lzma)

    from maild.cli.ticket_table import render

    # A terminal (or COLUMNS) fits the table to its width; a pipe or file gets every value whole.
    width = None
    if "COLUMNS" in os.environ or sys.stdout.isatty():
        width = shutil.get_terminal_size((120, 24)).columns
    print(render(page.rows, more=page.more, offset=args.offset, width=width))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from maild.store.tickets import find_ticket, ticket_detail

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
    related = [
        f"links {', '.join(data['links'])}" if data["links"] else "",
        f"merged into {data['merged_into']}" if data["merged_into"] else "",
        f"merged from {', '.join(data['merged_from'])}" if data["merged_from"] else "",
        f"snoozed until {data['snoozed_until']}" if data["snoozed_until"] else "",
    ]
    if any(related):
        print("  ".join(r for r in related if r))
    for m in data["messages"]:
        arrow = "<-" if m["direction"] == "in" else "->"
        print(f"\n{arrow} {m['created_at']} {m['kind']} {safe(m['from'])}")
        print(safe(m["body"].strip(), multiline=True) or "(no text)")
    print("\nevents:")
    for e in data["events"]:
        detail = json.dumps(e["detail"], ensure_ascii=False)
        print(f"  {e['at']} {safe(e['actor'])} {e['action']} {safe(detail)}")
    return 0


def _split_tags(args: argparse.Namespace) -> list[str] | str:
    """``--tag +x -y`` takes words up to the next option of ours, which are parsed again."""
    words: list[str] = list(args.tag or [])
    tags: list[str] = []
    for index, word in enumerate(words):
        if word.split("=", 1)[0] in SET_OPTIONS:
            rest = words[index:]
            args.tag = []
            try:
                args.parser.parse_args([args.ref, *rest], namespace=args)
            except SystemExit:
                return f"cannot read the options after --tag: {' '.join(rest)}"
            again = _split_tags(args)
            if isinstance(again, str):
                return again
            tags.extend(again)
            break
        tags.append(word)
    return tags


def cmd_set(args: argparse.Namespace) -> int:
    from maild.cli.ticket_admin import AdminError, set_fields

    tags = _split_tags(args)
    if isinstance(tags, str):
        return _fail(tags)
    changes: dict[str, Any] = {
        "status": args.status,
        "priority": args.priority,
        "team": args.team,
        "assign": args.assign,
        "fields": list(args.field),
        "tags": tags,
    }
    if not any(changes.values()):
        return _fail(
            "nothing to change: give --status, --priority, --team, --assign, --tag or --field"
        )
    app = open_app(args)
    try:
        done = set_fields(app, args.ref, **changes)
    except AdminError as exc:
        return _fail(str(exc), exc.code)
    print("\n".join(done) if done else f"{args.ref}: nothing changed (it had those values)")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from maild.cli.ticket_admin import AdminError, merge_ticket

    app = open_app(args)
    try:
        print(merge_ticket(app, args.ref, args.into))
    except AdminError as exc:
        return _fail(str(exc), exc.code)
    return 0
