"""``ticketd privacy export ADDRESS --output FILE | erase ADDRESS [--yes] [--dry-run] [--force]``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from maild.cli.common import add_config_option, open_app
from maild.cli.safe_text import terminal_safe
from maild.ops.privacy import describe, erase, export


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("privacy", help="export or erase everything about one person")
    psub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    exp = psub.add_parser("export", help="their tickets, messages, files and events in one zip")
    add_config_option(exp)
    exp.add_argument("address")
    exp.add_argument("--output", type=Path, required=True)
    exp.set_defaults(func=cmd_export)
    era = psub.add_parser("erase", help="remove their messages, files, rows and contact")
    add_config_option(era)
    era.add_argument("address")
    era.add_argument("--yes", action="store_true", help="do it (otherwise only show what would go)")
    era.add_argument("--dry-run", action="store_true", help="show what would be removed")
    era.add_argument("--force", action="store_true", help="erase even an agent's address")
    era.add_argument("--by", default=None, help="who asks for it, for the audit event")
    era.set_defaults(func=cmd_erase)


def cmd_export(args: argparse.Namespace) -> int:
    app = open_app(args)
    try:
        counts = export(app, args.address, args.output)
    finally:
        app.close()
    print(f"exported to {args.output}: " + ", ".join(describe(counts)))
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    app = open_app(args)
    actor = args.by or os.environ.get("SUDO_USER") or getpass.getuser()
    dry = args.dry_run or not args.yes
    try:
        counts = erase(app, args.address, actor=f"admin:{actor}", force=args.force, dry_run=dry)
    finally:
        app.close()
    word = "would remove" if dry else "erased"
    print(terminal_safe(f"{word} {args.address.strip().lower()}: " + ", ".join(describe(counts))))
    if dry and not args.dry_run:
        print("nothing changed: run again with --yes to erase", file=sys.stderr)
        return 1
    return 0
