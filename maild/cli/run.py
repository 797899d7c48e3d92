"""``ticketd run``: the daemon in the foreground."""

from __future__ import annotations

import argparse
import logging

from maild.cli.common import add_config_option, config_of
from maild.daemon import Daemon


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run the daemon in the foreground")
    add_config_option(parser)
    parser.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from maild.app import App

    config = config_of(args)
    logging.getLogger().setLevel(config.log_level.upper())
    daemon = Daemon(App.open(config))
    daemon.install_signals()
    return daemon.run()
