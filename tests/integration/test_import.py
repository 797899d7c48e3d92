"""``ticketd import``: mbox and Maildir archives through the spool and the pipeline, once each."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from email.utils import format_datetime
from pathlib import Path

from ruamel.yaml import YAML

from tests.conftest import base_config
from tests.mailgen import make_mail


def setup(tmp: Path) -> Path:
    data = base_config(tmp, f"sqlite:///{tmp / 'var' / 'ticketd.db'}")
    path = tmp / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(data, fh)
    return path


def ticketd(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def dated(raw: bytes, when: dt.datetime) -> bytes:
    head, _, body = raw.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.lower().startswith(b"date:")]
    lines.append(b"Date: " + format_datetime(when).encode())
    return b"\n".join(lines) + b"\n\n" + body


def mbox(messages: list[bytes]) -> bytes:
    out = []
    for raw in messages:
        body = raw.replace(b"\r\n", b"\n")
        out.append(
            b"From carol@customer.test Mon Mar  2 10:00:00 2020\n" + body.rstrip(b"\n") + b"\n\n"
        )
    return b"".join(out)


def history() -> list[bytes]:
    first = dated(make_mail(subject="Old printer", message_id="<a1@customer.test>"),
                  dt.datetime(2020, 3, 2, 10, 0, tzinfo=dt.UTC))  # fmt: skip
    reply = dated(
        make_mail(subject="Re: Old printer", message_id="<a2@customer.test>",
                  in_reply_to="<a1@customer.test>", references="<a1@customer.test>",
                  body="It is still broken.\n"),
        dt.datetime(2020, 3, 3, 9, 0, tzinfo=dt.UTC),
    )  # fmt: skip
    other = dated(make_mail(subject="Invoice question", message_id="<b1@customer.test>",
                            sender="Dan <dan@other.test>"),
                  dt.datetime(2021, 5, 1, 8, 0, tzinfo=dt.UTC))  # fmt: skip
    return [first, reply, other]


def tickets(config: Path) -> list[dict]:
    out = ticketd(config, "tickets", "list", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_an_archive_import_keeps_dates_sends_nothing_and_closes_tickets(tmp_path: Path) -> None:
    config = setup(tmp_path)
    archive = tmp_path / "old.mbox"
    archive.write_bytes(mbox(history()))
    out = ticketd(config, "import", "mbox", str(archive), "--archive")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "2 new, 1 appended, 0 duplicates, 0 quarantined, 0 not mail; 2 tickets closed as history"
    )
    found = sorted(tickets(config), key=lambda t: t["ref"])
    assert [t["status"] for t in found] == ["closed", "closed"]
    assert [t["tags"] for t in found] == [["imported"], ["imported"]]
    assert found[0]["created_at"].startswith("2020-03-02T10:00:00")
    assert found[0]["sla"]["first_response_due"] is None
    detail = json.loads(ticketd(config, "tickets", "show", found[0]["ref"], "--json").stdout)
    assert [m["created_at"][:10] for m in detail["messages"]] == ["2020-03-02", "2020-03-03"]
    assert detail["closed_at"].startswith("2020-03-03T09:00")
    db = sqlite3.connect(tmp_path / "var" / "ticketd.db")
    assert db.execute("SELECT COUNT(*) FROM outbox_entry").fetchone()[0] == 0
    assert not (tmp_path / "var" / "sent").exists() or not list(
        (tmp_path / "var" / "sent").iterdir()
    )
    again = ticketd(config, "import", "mbox", str(archive), "--archive")
    assert again.stdout.strip() == "0 new, 0 appended, 3 duplicates, 0 quarantined, 0 not mail"
    assert db.execute("SELECT COUNT(*) FROM message").fetchone()[0] == 3


def test_a_plain_import_goes_through_rules_and_automatic_mail(tmp_path: Path) -> None:
    config = setup(tmp_path)
    archive = tmp_path / "new.mbox"
    archive.write_bytes(mbox(history()[:1]))
    dry = ticketd(config, "import", "mbox", str(archive), "--dry-run")
    assert dry.stdout.strip() == "dry run: 1 to import, 0 duplicates, 0 not mail; nothing stored"
    assert tickets(config) == []
    out = ticketd(config, "import", "mbox", str(archive))
    assert out.stdout.startswith("1 new"), out.stderr
    (ticket,) = tickets(config)
    assert ticket["status"] == "new" and ticket["tags"] == []
    db = sqlite3.connect(tmp_path / "var" / "ticketd.db")
    assert db.execute("SELECT COUNT(*) FROM outbox_entry WHERE kind = 'auto'").fetchone()[0] == 1
    assert ticketd(config, "import", "mbox", str(archive), "--dry-run").stdout.startswith(
        "dry run: 0 to import, 1 duplicates"
    )


def test_broken_from_lines_neither_split_a_message_nor_spool_fragments(tmp_path: Path) -> None:
    config = setup(tmp_path)
    text = make_mail(subject="Quoting", message_id="<q1@customer.test>",
                     body="Dear support,\nFrom here on it fails.\n>From the log: error 7\n")  # fmt: skip
    data = (
        mbox([text])
        + (
            b"From nobody Tue Mar  3 10:00:00 2020\n"
            b"this is not a message, only a stray fragment\nof a truncated file\n\n"
        )
        + mbox(history()[2:])
    )
    archive = tmp_path / "broken.mbox"
    archive.write_bytes(data)
    out = ticketd(config, "import", "mbox", str(archive), "--archive")
    assert out.returncode == 0
    assert out.stdout.strip().startswith(
        "2 new, 0 appended, 0 duplicates, 0 quarantined, 1 not mail"
    )
    assert "skipped mbox message 2: does not start with mail headers" in out.stderr
    quoting = next(t for t in tickets(config) if t["subject"] == "Quoting")
    detail = json.loads(ticketd(config, "tickets", "show", quoting["ref"], "--json").stdout)
    body = detail["messages"][0]["body"]
    assert "From here on it fails." in body and "From the log: error 7" in body


def test_a_maildir_with_files_that_are_not_mail_imports_the_mail(tmp_path: Path) -> None:
    config = setup(tmp_path)
    box = tmp_path / "Maildir"
    for folder in ("cur", "new", "tmp"):
        (box / folder).mkdir(parents=True)
    first, reply, other = history()
    (box / "cur" / "1.host:2,S").write_bytes(first)
    (box / "cur" / "2.host:2,S").write_bytes(reply)
    (box / "new" / "3.host").write_bytes(other)
    (box / "new" / "4.host").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (box / "new" / "5.host").write_bytes(b"")
    (box / "tmp" / "6.host").write_bytes(first)  # still being delivered: not part of the box
    out = ticketd(config, "import", "maildir", str(box), "--archive")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("2 new, 1 appended, 0 duplicates, 0 quarantined, 2 not mail")
    assert "new/4.host: does not start with mail headers" in out.stderr
    assert "new/5.host: empty" in out.stderr
    missing = ticketd(config, "import", "maildir", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    notbox = ticketd(config, "import", "maildir", str(tmp_path))
    assert notbox.returncode == 1 and "not a Maildir" in notbox.stderr
    assert "Traceback" not in missing.stderr + notbox.stderr


def big_mbox(path: Path, count: int) -> None:
    start = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    with path.open("wb") as fh:
        for n in range(count):
            raw = dated(
                make_mail(subject=f"Case {n}", message_id=f"<big{n}@customer.test>",
                          sender=f"Customer {n % 50} <c{n % 50}@customer.test>"),
                start + dt.timedelta(minutes=n),
            )  # fmt: skip
            fh.write(mbox([raw]))


def test_an_import_of_10000_messages_killed_halfway_resumes_without_duplicates(
    tmp_path: Path,
) -> None:
    config = setup(tmp_path)
    archive = tmp_path / "big.mbox"
    count = 10_000
    big_mbox(archive, count)
    proc = subprocess.Popen(
        [sys.executable, "-m", "maild.cli.main", "import", "mbox", str(archive), "--archive",
         "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    db_path = tmp_path / "var" / "ticketd.db"
    deadline = time.monotonic() + 600
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db_path.exists():
            with sqlite3.connect(db_path, timeout=30) as db:
                try:
                    done = db.execute("SELECT COUNT(*) FROM message").fetchone()[0]
                except sqlite3.OperationalError:  # the schema is still being created
                    done = 0
            if done >= count // 2:
                break
        time.sleep(0.2)  # polling the database for progress, not waiting for an outcome
    assert proc.poll() is None, "the import ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    out = ticketd(config, "import", "mbox", str(archive), "--archive")
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(db_path) as db:
        messages = db.execute("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM message").fetchone()
        open_tickets = db.execute(
            "SELECT COUNT(*) FROM ticket WHERE status != 'closed'"
        ).fetchone()[0]
        spool_rows = db.execute("SELECT COUNT(*) FROM spool_entry").fetchone()[0]
    assert messages == (count, count)
    assert spool_rows == count
    assert open_tickets == 0
    new = int(out.stdout.split(" new,")[0])
    duplicates = int(out.stdout.split(" appended, ")[1].split(" duplicates")[0])
    assert new + duplicates == count and duplicates >= count // 2


def test_the_progress_bar_shows_on_a_terminal_only(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    config = setup(tmp_path)
    archive = tmp_path / "one.mbox"
    archive.write_bytes(mbox(history()))
    quiet = ticketd(config, "import", "mbox", str(archive), "--archive", "--dry-run")
    assert "msg" not in quiet.stderr and quiet.stderr == ""
    main, child = pty.openpty()
    # A real terminal has a size; a fresh pty has 0 columns, into which tqdm fits nothing.
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    done = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", "import", "mbox", str(archive), "--archive",
         "--config", str(config)],
        stdout=subprocess.PIPE, stderr=child, timeout=300,
    )  # fmt: skip
    os.close(child)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once the child side is closed and drained
        while chunk := os.read(main, 4096):
            shown += chunk
    os.close(main)
    assert done.returncode == 0
    assert b"import: " in shown and b"import: 3msg" in shown
