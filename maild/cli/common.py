"""What every subcommand shares: the --config option and opening the App."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from maild.app import App
from maild.cli.safe_text import terminal_safe
from maild.config import Config, default_config_path, load_config


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default: $TICKETD_CONFIG, then ./config.yaml)",
    )


def config_of(args: argparse.Namespace) -> Config:
    return load_config(args.config or default_config_path())


def open_app(args: argparse.Namespace) -> App:
    return App.open(config_of(args))


def print_rows(
    rows: Sequence[dict[str, Any]],
    *,
    as_json: bool,
    empty: str,
    line: Callable[[dict[str, Any]], str],
) -> int:
    """A list command's output: JSON, ``empty`` when there is nothing, else one line per row
    (control characters from mail escaped)."""
    if as_json:
        print(json.dumps(list(rows), indent=2))
    elif not rows:
        print(empty)
    else:
        for row in rows:
            print(terminal_safe(line(row)))  # rows carry addresses, subjects, errors
    return 0


def parse_time(value: str | None) -> dt.datetime:
    """An ``--at`` option as an aware time in its own offset (naive means UTC); now when empty.

    Raises ValueError when ``value`` is not ISO 8601.
    """
    if not value:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    parsed = dt.datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def bad_time(value: str) -> int:
    """Report an ``--at`` that is not ISO 8601; the exit status for it (2, a usage error)."""
    print(
        f"ticketd: --at {value!r}: expected ISO 8601, e.g. 2026-11-30T09:30:00+01:00",
        file=sys.stderr,
    )
    return 2
