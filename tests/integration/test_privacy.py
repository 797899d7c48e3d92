"""``ticketd privacy export|erase``: a person's data handed over, or gone to the last byte."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

from ruamel.yaml import YAML

from maild import spool
from maild.app import App
from maild.config import load_config
from maild.worker import make_worker
from tests.conftest import base_config
from tests.mailgen import make_mail

CAROL = "carol@customer.test"
SECRET_PHRASE = b"my-unmistakable-printer-serial-XK42"
UNIQUE = b"%PDF carol private scan " * 40
SHARED = b"%PDF the public price list " * 40


def setup(tmp: Path) -> Path:
    data = base_config(tmp, f"sqlite:///{tmp / 'var' / 'ticketd.db'}")
    (tmp / "rules").mkdir(exist_ok=True)
    (tmp / "rules" / "10-agents.yaml").write_text(
        "agents:\n  - {email: alice@example.com, name: Alice Agent}\n"
    )
    path = tmp / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(data, fh)
    app = App.open(load_config(path))
    try:
        mails = [
            make_mail(
                subject="Printer",
                body=f"Serial {SECRET_PHRASE.decode()} is broken.\n",
                attachments=[
                    ("scan.pdf", "application/pdf", UNIQUE),
                    ("prices.pdf", "application/pdf", SHARED),
                ],
            ),
            make_mail(
                subject="Prices",
                sender="Dan <dan@other.test>",
                body="Where is the price list?\n",
                cc=f"Carol <{CAROL}>",
                attachments=[("prices.pdf", "application/pdf", SHARED)],
            ),
            make_mail(
                subject="Agent note", sender="Alice Agent <alice@example.com>", body="A note.\n"
            ),
        ]
        for raw in mails:
            spool.enqueue(app.db, raw, source="smtp")
        make_worker(app).run_once()
    finally:
        app.close()
    return path


def ticketd(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def database_bytes(tmp: Path) -> bytes:
    var = tmp / "var"
    return b"".join(p.read_bytes() for p in sorted(var.glob("ticketd.db*")))


def test_export_holds_tickets_messages_events_and_files(tmp_path: Path) -> None:
    config = setup(tmp_path)
    output = tmp_path / "carol.zip"
    out = ticketd(config, "privacy", "export", CAROL.upper(), "--output", str(output))
    assert out.returncode == 0, out.stderr
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
        data = json.loads(archive.read("data.json"))
        raw = [archive.read(n) for n in names if n.startswith("raw/")]
        files = [archive.read(n) for n in names if n.startswith("attachments/")]
    assert data["address"] == CAROL
    (ticket,) = data["tickets"]
    assert ticket["subject"] == "Printer" and ticket["events"]
    assert SECRET_PHRASE.decode() in ticket["messages"][0]["body"]
    assert any(SECRET_PHRASE in r for r in raw)
    assert sorted(files) == sorted([UNIQUE, SHARED])
    missing = ticketd(config, "privacy", "export", "nobody@nowhere.test", "--output", str(output))
    assert missing.returncode == 1 and "nothing is stored" in missing.stderr


def test_erase_removes_everything_of_theirs_down_to_the_database_bytes(tmp_path: Path) -> None:
    config = setup(tmp_path)
    assert CAROL.encode() in database_bytes(tmp_path)
    dry = ticketd(config, "privacy", "erase", CAROL, "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith(f"would remove {CAROL}: tickets: 1")
    unconfirmed = ticketd(config, "privacy", "erase", CAROL)
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    assert CAROL.encode() in database_bytes(tmp_path)
    blobs = tmp_path / "var" / "attachments"
    before = {p.read_bytes() for p in blobs.rglob("*") if p.is_file()}
    assert {UNIQUE, SHARED} <= before
    out = ticketd(config, "privacy", "erase", CAROL, "--yes", "--by", "dpo@example.com")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(
        f"erased {CAROL}: tickets: 1, messages: 2, mentions: 1"
    )  # hers and our ack
    after = {p.read_bytes() for p in blobs.rglob("*") if p.is_file()}
    assert UNIQUE not in after and SHARED in after  # Dan's ticket still has the price list
    everything = database_bytes(tmp_path)
    assert CAROL.encode() not in everything
    assert SECRET_PHRASE not in everything
    assert b"Carol" not in everything  # her name, in the contact, her From and Dan's Cc header
    tickets = json.loads(ticketd(config, "tickets", "list", "--json").stdout)
    shell = next(t for t in tickets if t["subject"] == "[erased]")
    detail = json.loads(ticketd(config, "tickets", "show", shell["ref"], "--json").stdout)
    assert detail["messages"] == []
    (event,) = detail["events"]
    assert event["action"] == "erased" and event["actor"] == "admin:dpo@example.com"
    prices = next(t for t in tickets if t["subject"] == "Prices")
    shown = json.loads(ticketd(config, "tickets", "show", prices["ref"], "--json").stdout)
    assert shown["messages"][0]["cc"] == ["[erased]"]
    db = sqlite3.connect(tmp_path / "var" / "ticketd.db")
    assert db.execute("SELECT COUNT(*) FROM contact WHERE email = ?", (CAROL,)).fetchone()[0] == 0


def test_erasing_an_agents_address_is_refused_unless_forced(tmp_path: Path) -> None:
    config = setup(tmp_path)
    out = ticketd(config, "privacy", "erase", "alice@example.com", "--yes")
    assert out.returncode == 1
    assert "is an agent's address" in out.stderr and "Traceback" not in out.stderr
    assert b"alice@example.com" in database_bytes(tmp_path)
    forced = ticketd(config, "privacy", "erase", "alice@example.com", "--yes", "--force")
    assert forced.returncode == 0, forced.stderr
    bad = ticketd(config, "privacy", "erase", "not-an-address", "--yes")
    assert bad.returncode == 1 and "not an email address" in bad.stderr
