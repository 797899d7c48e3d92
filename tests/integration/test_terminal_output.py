"""Mail data on the operator's terminal: ``ticketd`` text views escape what could steer it.

Mails with ESC, CSI, OSC, BEL and U+202E in the subject, the sender's name and the body go in
through ``ticketd inject``; ``tickets list``, ``tickets show`` and ``spool list`` (real
subprocesses, on SQLite and PostgreSQL) print them escaped, and ``--json`` keeps them exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from tests.conftest import base_config
from tests.mailgen import make_mail

# Raw bytes a terminal acts on; none may reach stdout of a text view.
DANGEROUS = ("\x1b", "\x07", "\x9b", "\u202e", "\x00")
SUBJECTS = [
    ("ESC", "Invoice \x1b[2J cleared"),
    ("CSI", "Invoice \x1b[31;1mred\x1b[0m and \x9b2J"),
    ("OSC", "Invoice \x1b]0;root@prod: rm -rf\x07 title"),
    ("BEL", "Invoice \x07\x07\x07 ding"),
    ("RLO", "Invoice \u202efdp.exe"),
]


def write_config(tmp_path: Path, db_url: str) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(base_config(tmp_path, db_url), fh)
    return path


def ticketd(config: Path, *args: str, stdin: bytes | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},  # a pipe: nothing cut
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.decode("utf-8")


def test_text_views_escape_control_characters_json_keeps_them(
    tmp_path: Path, any_db_url: str
) -> None:
    config = write_config(tmp_path, any_db_url)
    for _, subject in SUBJECTS:
        raw = make_mail(
            subject=subject,
            sender=f'"Carol {subject[8:14]}" <carol@customer.test>',
            body=f"Hello\n{subject}\nline two\n",
        )
        assert "new ACME-" in ticketd(config, "inject", stdin=raw)

    listed = ticketd(config, "tickets", "list")
    rows = json.loads(ticketd(config, "tickets", "list", "--json"))
    spool = ticketd(config, "spool", "list", "--all")
    assert len(listed.strip().splitlines()) == 1 + len(SUBJECTS)  # nothing broke a row
    for view in (listed, spool):
        assert not [c for c in DANGEROUS if c in view], view
    for row, (what, subject) in zip(rows, reversed(SUBJECTS), strict=True):
        shown = ticketd(config, "tickets", "show", row["ref"])
        assert not [c for c in DANGEROUS if c in shown], (what, shown)
        escaped = {"RLO": "\\u202e", "BEL": "\\x07"}.get(what, "\\x1b")
        assert escaped in shown and f"\n{row['ref']} " in listed
        assert "Hello\n" in shown and "line two" in shown  # the body keeps its lines
        # JSON stays JSON, and the data in it is exactly what came in.
        assert row["subject"] == subject
        detail = json.loads(ticketd(config, "tickets", "show", row["ref"], "--json"))
        assert subject in detail["messages"][0]["body"]
    for escaped in ("\\x1b[2J", "\\x9b2J", "\\x1b]0;", "\\x07", "\\u202e"):
        assert escaped in listed
