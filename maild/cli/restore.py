"""``ticketd restore FILE --data-dir DIR``: unpack a backup into an empty data dir and verify it."""

from __future__ import annotations

import argparse
from pathlib import Path

from maild.ops.backup import PG_NAME, SQLITE_NAME, restore


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("restore", help="restore a backup into an empty data dir")
    parser.add_argument("file", type=Path, help="an archive made by ticketd backup")
    parser.add_argument("--data-dir", type=Path, required=True, help="an empty or new folder")
    parser.set_defaults(func=cmd_restore)


def cmd_restore(args: argparse.Namespace) -> int:
    summary = restore(args.file, args.data_dir)
    print(f"restored and verified: {summary.line()}")
    if summary.database == "sqlite":
        db = (args.data_dir / SQLITE_NAME).resolve()
        print(f"set instance.data_dir: {args.data_dir.resolve()} and database.url: sqlite:///{db}")
    else:
        dump = (args.data_dir / PG_NAME).resolve()
        print(f"load the database into an empty one: pg_restore --no-owner --dbname=URL {dump}")
    return 0
