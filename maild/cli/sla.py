"""``ticketd sla check [--at TIME]``: run the SLA and lifecycle sweep once, as if the clock read TIME.

TIME is ISO 8601, with an offset or naive meaning UTC (default: now). Prints one line per action
(escalations, reminders, auto-resolve, auto-close) and a summary; exit 0, or 1 when an action
failed (it is rolled back and tried again by the next sweep). Broken rules are a configuration
error (exit 78), as for ``ticketd run``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from maild.cli.common import add_config_option, bad_time, config_of, parse_time
from maild.cli.safe_text import terminal_safe


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sla", help="SLA escalations and the ticket lifecycle")
    ssub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = ssub.add_parser("check", help="run the SLA and lifecycle sweep once")
    add_config_option(check)
    check.add_argument("--at", help="act as if the clock read this ISO 8601 time (default: now)")
    check.set_defaults(func=cmd_check)


def parse_at(value: str | None) -> dt.datetime:
    """``--at`` as naive UTC, the form the database stores; ValueError when not ISO 8601."""
    return parse_time(value).astimezone(dt.UTC).replace(tzinfo=None)


def cmd_check(args: argparse.Namespace) -> int:
    from maild.app import App
    from maild.clock import FixedClock, iso
    from maild.routing.reload import RulesHolder
    from maild.sla.sweep import Sweep
    from maild.store.db import is_locked

    try:
        now = parse_at(args.at)
    except ValueError:
        return bad_time(args.at)
    config = config_of(args)
    holder = RulesHolder.open(config.rules_dir, config.templates_dir)
    app = App.open(config, clock=FixedClock(now))
    try:
        run = Sweep(app, holder.rules, now)
        done = run.run()
    except Exception as exc:
        if not is_locked(exc):
            raise
        print(
            f"ticketd: the database is locked (another process is writing): {exc}", file=sys.stderr
        )
        return 75  # EX_TEMPFAIL: actions already done are kept; the next run does the rest
    finally:
        app.close()
    for line in done:
        print(terminal_safe(line))
    for line in run.errors:
        print(f"ticketd: {terminal_safe(line)}", file=sys.stderr)
    count = len(done)
    failed = f", {len(run.errors)} failed" if run.errors else ""
    print(f"sla check at {iso(now)}: {count} action{'' if count == 1 else 's'}{failed}")
    return 1 if run.errors else 0
