"""What every subcommand shares: the --config option and opening the App."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from maild.app import App
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
    """A list command's output: JSON, ``empty`` when there is nothing, else one line per row."""
    if as_json:
        print(json.dumps(list(rows), indent=2))
    elif not rows:
        print(empty)
    else:
        for row in rows:
            print(line(row))
    return 0
