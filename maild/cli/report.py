"""``ticketd report``: volumes, times, SLA adherence and satisfaction over a window.

Options are checked before anything is opened; a wrong one is one line on stderr and exit 64.
``--output`` is written whole or not at all (a temporary file renamed into place).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from maild.cli.common import add_config_option, open_app
from maild.errors import TicketdError
from maild.reports.build import (
    FORMATS,
    check_format,
    check_team,
    load_business_hours,
    make_report,
    render,
    report_zone,
)
from maild.reports.period import check_options, resolve_period


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="tickets, response times, SLA adherence and satisfaction over a period",
        description="Report over --since (default 30d, rolling) or the days --from .. --to "
        "(in the business-hours time zone). Formats: " + ", ".join(FORMATS) + ".",
    )
    add_config_option(parser)
    parser.add_argument("--since", help="a rolling window ending now: 12h, 30d, 2w")
    parser.add_argument("--from", dest="date_from", metavar="DATE", help="first day, 2026-03-01")
    parser.add_argument("--to", dest="date_to", metavar="DATE", help="last day (included)")
    parser.add_argument("--team", help="only tickets of this team")
    parser.add_argument(
        "--by",
        default="team",
        metavar="team|field.NAME",
        help="group the per-team section by a custom field's value instead",
    )
    parser.add_argument("--format", default="table", help="table (default), csv, json or html")
    parser.add_argument("--output", type=Path, help="write to this file instead of stdout")
    parser.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    # Check what can be checked without the database first, so a typo costs nothing.
    check_format(args.format)
    check_options(args.since, args.date_from, args.date_to)
    app = open_app(args)
    try:
        bh = load_business_hours(app)
        check_team(app, args.team)
        now = app.clock.now()
        period = resolve_period(
            now=now,
            zone=report_zone(bh),
            since=args.since,
            date_from=args.date_from,
            date_to=args.date_to,
        )
        report = make_report(app, period, business_hours=bh, team=args.team, now=now, by=args.by)
        text = render(report, args.format)
    finally:
        app.close()
    if args.output is None:
        sys.stdout.write(text)
        return 0
    write_atomically(args.output, text)
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise TicketdError(f"--output {path}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise TicketdError(f"--output {path}: cannot write: {exc.strerror or exc}") from exc
