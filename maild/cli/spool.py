"""``ticketd spool list|retry ID``: quarantined (and pending) inbound messages."""

from __future__ import annotations

import argparse

from maild import spool
from maild.cli.common import add_config_option, open_app, print_rows
from maild.cli.safe_text import terminal_safe
from maild.clock import iso
from maild.store.models import SpoolEntry


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("spool", help="quarantined inbound messages")
    ssub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = ssub.add_parser("list", help="quarantined and pending messages")
    add_config_option(lst)
    lst.add_argument("--all", action="store_true", help="include processed messages")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    retry = ssub.add_parser("retry", help="process a quarantined message again")
    add_config_option(retry)
    retry.add_argument("id", type=int)
    retry.add_argument(
        "--spool-only", action="store_true", help="leave processing to the running daemon"
    )
    retry.set_defaults(func=cmd_retry)


def cmd_list(args: argparse.Namespace) -> int:
    open_app(args)
    query = SpoolEntry.select(
        SpoolEntry.id,
        SpoolEntry.received_at,
        SpoolEntry.source,
        SpoolEntry.mail_from,
        SpoolEntry.size,
        SpoolEntry.status,
        SpoolEntry.attempts,
        SpoolEntry.last_error,
        SpoolEntry.result,
    ).order_by(SpoolEntry.id)
    if not args.all:
        query = query.where(SpoolEntry.status != spool.DONE)
    rows = [
        {
            "id": e.id,
            "received_at": iso(e.received_at),
            "source": e.source,
            "mail_from": e.mail_from,
            "size": e.size,
            "status": e.status,
            "attempts": e.attempts,
            "error": (e.last_error or "").splitlines()[0] if e.last_error else None,
            "result": e.result,
        }
        for e in query
    ]
    return print_rows(
        rows,
        as_json=args.json,
        empty="spool is empty" if args.all else "nothing quarantined or pending",
        line=lambda r: (
            f"#{r['id']:<6} {r['status']:<11} {r['received_at']} {r['source']:<5} "
            f"{r['size']:>9}B attempts={r['attempts']} {r['error'] or r['result'] or ''}"
        ),
    )


def cmd_retry(args: argparse.Namespace) -> int:
    app = open_app(args)
    entry = spool.retry(app.db, args.id)
    if args.spool_only:
        print(f"spool #{entry.id} queued for the daemon")
        return 0
    from maild.worker import make_worker

    make_worker(app).run_once(ids=[entry.id])
    entry = SpoolEntry.get_by_id(entry.id)
    if entry.status == spool.DONE:
        print(f"spool #{entry.id} {terminal_safe(entry.result)}")
        return 0
    error = terminal_safe((entry.last_error or "").splitlines()[0])
    print(f"spool #{entry.id} {entry.status}: {error}")
    return 1
