"""``ticketd status [--json]``: the health of every part, as ``GET /healthz`` shows it.

Exit status 0 when healthy, 1 when a check fails (for monitoring scripts and cron).
"""

from __future__ import annotations

import argparse
import json

from maild.cli.common import add_config_option, open_app
from maild.cli.safe_text import terminal_safe
from maild.ops.health import health


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("status", help="health of every part (the same as GET /healthz)")
    add_config_option(parser)
    parser.add_argument("--json", action="store_true", help="print {healthy, checks} as JSON")
    parser.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        result = health(app)
    finally:
        app.close()
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print("healthy" if result.healthy else "UNHEALTHY")
        for check in result.checks:
            mark = "ok  " if check.ok else "FAIL"
            print(terminal_safe(f"  {mark} {check.name:<20} {check.detail}"))
    return 0 if result.healthy else 1
