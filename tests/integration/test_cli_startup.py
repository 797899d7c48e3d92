"""CLI start-up: a read command imports only what it needs and takes no write lock.

Each check runs the command in a fresh interpreter (a subprocess), as a user's shell does, and
looks at ``sys.modules`` afterwards, so an import moved back to module level fails here.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import base_config

# Libraries a read command never needs: charts, templates, the web server, the classifier, the
# PostgreSQL driver (on SQLite), SMTP intake and the mail parser.
HEAVY = (
    "matplotlib",
    "jinja2",
    "aiohttp",
    "sklearn",
    "psycopg",
    "aiosmtpd",
    "mailparser",
    "limits",
)

RUN = """
import contextlib, io, json, sys
from maild.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main(sys.argv[1:])
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))
print(json.dumps({"status": status, "heavy": heavy, "out": out.getvalue()}))
"""


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """A SQLite instance with one ticket (ACME-1), made through ``ticketd inject``."""
    config = tmp_path / "config.yaml"
    data = base_config(tmp_path, f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}")
    data["database"]["busy_timeout_ms"] = 300
    config.write_text(json.dumps(data))  # JSON is YAML
    msg = EmailMessage()
    msg["From"] = "Carol <carol@customer.test>"
    msg["To"] = "support@example.com"
    msg["Subject"] = "The export stops half-way"
    msg["Message-ID"] = "<startup-1@customer.test>"
    msg.set_content("Hello, the CSV export stops half-way.\n")
    eml = tmp_path / "first.eml"
    eml.write_bytes(msg.as_bytes())
    subprocess.run(
        [sys.executable, "-m", "maild.cli.main", "inject", "--config", str(config), str(eml)],
        check=True,
        capture_output=True,
    )
    return config


def run_cli(*argv: str) -> dict:
    script = f"HEAVY = {HEAVY!r}\n{RUN}"
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "argv",
    [
        ["tickets", "show", "ACME-1", "--json"],
        ["tickets", "list", "--json", "--limit", "50"],
        ["spool", "list", "--json"],
        ["outbox", "list", "--json"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_read_command_imports_no_heavy_library(instance: Path, argv: list[str]) -> None:
    result = run_cli(*argv, "--config", str(instance))
    assert result["status"] == 0
    json.loads(result["out"])  # it did its work
    assert result["heavy"] == []


# What argparse (shutil with zlib, bz2 and lzma, for the terminal's width), the signing secret
# (secrets, random) and attachment names (mimetypes) would import: `tickets show` and `list` need
# none of them.
STDLIB_NOT_NEEDED = ("shutil", "bz2", "lzma", "secrets", "random", "mimetypes")


@pytest.mark.parametrize(
    "argv",
    [["tickets", "show", "ACME-1", "--json"], ["tickets", "list", "--json", "--limit", "50"]],
    ids=lambda a: " ".join(a[:2]),
)
def test_tickets_show_and_list_import_no_standard_module_they_do_not_use(
    instance: Path, argv: list[str]
) -> None:
    script = f"HEAVY = {STDLIB_NOT_NEEDED!r}\n{RUN}"
    done = subprocess.run(
        [sys.executable, "-c", script, *argv, "--config", str(instance)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == 0
    json.loads(result["out"])
    assert result["heavy"] == []


def test_a_command_run_in_process_leaves_the_garbage_collector_as_it_found_it(
    instance: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # main() switches the collector off while the command's modules import and freezes what they
    # built; a caller that runs commands in its own process (the tests) gets both undone.
    import gc

    from maild.cli.main import main

    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert main(["tickets", "show", "ACME-1", "--json", "--config", str(instance)]) == 0
    assert json.loads(capsys.readouterr().out)["ref"] == "ACME-1"
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        assert main(["tickets", "list", "--json", "--config", str(instance)]) == 0
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()
    with pytest.raises(SystemExit):
        main(["tickets", "show", "--no-such-option"])
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_tickets_show_answers_while_another_process_holds_the_write_lock(instance: Path) -> None:
    # The daemon writes all the time; a read command must not queue behind it (or fail after
    # busy_timeout) just to learn that the schema is already there.
    holder = sqlite3.connect(instance.parent / "var" / "ticketd.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run_cli("tickets", "show", "ACME-1", "--json", "--config", str(instance))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result["status"] == 0
    assert json.loads(result["out"])["subject"] == "The export stops half-way"


def test_the_usage_message_still_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", "--help"], capture_output=True, text=True
    )
    from maild.cli.main import COMMANDS

    assert done.returncode == 0
    for name in COMMANDS:
        assert name in done.stdout
