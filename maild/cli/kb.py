"""``ticketd kb check | search QUERY | suggest FILE.eml``: the knowledge base from the shell.

Each command first brings the index in line with ``kb_dir`` (as the daemon does when the folder
changes), so what it prints is what the acknowledgement would use.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maild.app import App
from maild.cli.common import add_config_option, open_app
from maild.cli.safe_text import terminal_safe as safe


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("kb", help="the knowledge base: check, search, suggest")
    ksub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = ksub.add_parser("check", help="read every article; list the broken ones (exit 1)")
    add_config_option(check)
    check.set_defaults(func=cmd_check)
    search = ksub.add_parser("search", help="the articles that fit QUERY, best first")
    add_config_option(search)
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)
    suggest = ksub.add_parser("suggest", help="what the acknowledgement of a mail would suggest")
    add_config_option(suggest)
    suggest.add_argument("file", type=Path, metavar="FILE.eml")
    suggest.add_argument("--team", help="the ticket's team (articles of other teams are left out)")
    suggest.add_argument("--json", action="store_true")
    suggest.set_defaults(func=cmd_suggest)


def _synced(args: argparse.Namespace) -> tuple[App, list[str], int]:
    """The app, with the index synced; the files left out (the caller prints them)."""
    from maild.kb.articles import load_folder
    from maild.kb.index import sync

    app = open_app(args)
    articles, errors, _read = load_folder(app.config.kb_dir)
    sync(app.db, articles)
    return app, errors, len(articles)


def cmd_check(args: argparse.Namespace) -> int:
    app, errors, count = _synced(args)
    for error in errors:
        print(error, file=sys.stderr)
    if not app.config.kb_dir.is_dir():
        print(f"no knowledge base: {app.config.kb_dir} is not a folder")
        return 0
    print(f"{count} article{'s' if count != 1 else ''} in {app.config.kb_dir}")
    if errors:
        n = len(errors)
        print(f"{n} file{'s' if n != 1 else ''} left out", file=sys.stderr)
        return 1
    return 0


def _print_hits(hits: list, as_json: bool, empty: str) -> int:
    if as_json:
        print(json.dumps([h.as_dict() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print(empty)
    for h in hits:
        print(f"{h.score:.3f}  {h.slug:<32} {safe(h.title)}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from maild.kb.index import search

    app, errors, _count = _synced(args)
    for error in errors:
        print(f"warning: left out {error}", file=sys.stderr)
    hits = search(app.db, args.query, limit=max(args.limit, 0))
    return _print_hits(hits, args.json, "(no article fits)")


def cmd_suggest(args: argparse.Namespace) -> int:
    from maild.kb.suggest import suggestions
    from maild.pipeline.parse import ParseError, parse_message
    from maild.pipeline.reply import reply_text

    try:
        msg = parse_message(args.file.read_bytes())
    except OSError as exc:
        print(f"ticketd: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ParseError as exc:
        print(f"ticketd: {args.file}: {exc}", file=sys.stderr)
        return 1
    app, errors, _count = _synced(args)
    for error in errors:
        print(f"warning: left out {error}", file=sys.stderr)
    team = args.team.lower() if args.team else None
    hits = suggestions(app.db, app.config.kb, msg.subject, reply_text(msg), team)
    empty = f"(nothing scores {app.config.kb.min_score:g} or more: no suggestions)"
    return _print_hits(hits, args.json, empty)
