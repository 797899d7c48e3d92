"""``ticketd backup --output FILE``: the database and the data dir's files in one archive."""

from __future__ import annotations

import argparse
from pathlib import Path

from maild.cli.common import add_config_option, open_app
from maild.ops.backup import backup


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("backup", help="archive the database, attachments and secret")
    add_config_option(parser)
    parser.add_argument("--output", type=Path, required=True, help="the archive to write (.tar.gz)")
    parser.set_defaults(func=cmd_backup)


def cmd_backup(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        summary = backup(app, args.output)
    finally:
        app.close()
    print(f"backup written: {summary.line()}")
    return 0
