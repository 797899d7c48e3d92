"""``ticketd webhooks list [--all] [--json] | retry ID | test NAME``: webhook deliveries."""

from __future__ import annotations

import argparse

from maild.cli.common import add_config_option, open_app, print_rows


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("webhooks", help="webhook deliveries and their state")
    wsub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = wsub.add_parser("list", help="queued and failed deliveries (--all: sent too)")
    add_config_option(lst)
    lst.add_argument("--all", action="store_true")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    rt = wsub.add_parser("retry", help="queue a failed delivery again (same webhook-id)")
    add_config_option(rt)
    rt.add_argument("id", type=int)
    rt.set_defaults(func=cmd_retry)
    ts = wsub.add_parser("test", help="send a signed webhook.test event to a hook now")
    add_config_option(ts)
    ts.add_argument("name")
    ts.set_defaults(func=cmd_test)


def cmd_list(args: argparse.Namespace) -> int:
    from maild.webhooks.admin import rows

    app = open_app(args)
    return print_rows(
        rows(app, everything=args.all),
        as_json=args.json,
        empty="no deliveries" if args.all else "nothing queued or failed",
        line=lambda r: (
            f"#{r['id']:<6} {r['status']:<7} {r['target']:<20} {r['event']:<22} "
            f"{r['ticket'] or '-':<10} attempts={r['attempts']} {r['last_error'] or ''}"
        ),
    )


def cmd_retry(args: argparse.Namespace) -> int:
    from maild.webhooks.admin import retry

    row = retry(open_app(args), args.id)
    print(f"webhook delivery #{row.id} queued again (webhook-id {row.webhook_id})")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from maild.webhooks.admin import send_test

    outcome, webhook_id = send_test(open_app(args), args.name)
    print(f"webhook {args.name} ({webhook_id}): {outcome.detail}")
    return 0 if outcome.ok else 1
