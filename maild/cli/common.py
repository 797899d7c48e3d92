"""What every subcommand shares: the --config option and opening the App."""

from __future__ import annotations

import argparse
from pathlib import Path

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
