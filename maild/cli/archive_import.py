"""``ticketd import mbox|maildir PATH [--archive] [--dry-run]``: old mail through the pipeline.

(The module is not called ``import``: that is a Python keyword.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maild.cli.common import add_config_option, open_app
from maild.cli.safe_text import terminal_safe

SHOW_SKIPPED = 20  # the first few messages that were not mail, named on stderr


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("import", help="import an mbox file or a Maildir folder")
    add_config_option(parser)
    parser.add_argument("kind", choices=("mbox", "maildir"))
    parser.add_argument("path", type=Path)
    parser.add_argument(
        "--archive",
        action="store_true",
        help="history: original dates, no mail sent, no SLA, tickets left closed",
    )
    parser.add_argument("--dry-run", action="store_true", help="count only; store nothing")
    parser.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    # Imported here: the worker pulls in the mail parser, which other commands do not need.
    from maild.ops.importer import Importer, progress_bar
    from maild.ops.sources import read_source

    app = open_app(args)
    try:
        items = read_source(args.kind, args.path)
        importer = Importer(app, archive=args.archive, dry_run=args.dry_run)
        summary = importer.run(items, progress_bar())
    finally:
        app.close()
    for line in summary.skipped[:SHOW_SKIPPED]:
        print(terminal_safe(f"ticketd: skipped {line}"), file=sys.stderr)
    if len(summary.skipped) > SHOW_SKIPPED:
        print(f"ticketd: ... and {len(summary.skipped) - SHOW_SKIPPED} more", file=sys.stderr)
    print(summary.line(dry_run=args.dry_run))
    return 0
