"""``ticketd backup`` / ``ticketd restore``: a consistent archive, verified on the way back."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

from ruamel.yaml import YAML

from maild import spool
from maild.app import App
from maild.config import config_from_dict
from maild.store.models import Attachment, Message, SpoolEntry, Ticket
from maild.worker import make_worker
from tests.conftest import base_config
from tests.mailgen import make_mail


def write_config(tmp: Path, db_url: str | None = None) -> Path:
    data = base_config(tmp, db_url or f"sqlite:///{tmp / 'var' / 'ticketd.db'}")
    path = tmp / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(data, fh)
    return path


def ticketd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def fill(app: App) -> None:
    pdf = b"%PDF-1.4 invoice " * 50
    spool.enqueue(
        app.db,
        make_mail(subject="Invoice", attachments=[("invoice.pdf", "application/pdf", pdf)]),
        source="smtp",
    )
    spool.enqueue(app.db, make_mail(subject="Second"), source="pipe")
    make_worker(app).run_once()


def test_a_backup_restores_into_a_new_data_dir_and_verifies(sqlite_app: App, tmp_path) -> None:
    fill(sqlite_app)
    config = write_config(tmp_path)
    archive = tmp_path / "backup.tar.gz"
    out = ticketd("backup", "--config", str(config), "--output", str(archive))
    assert out.returncode == 0, out.stderr
    assert "sqlite database" in out.stdout and "2 files" in out.stdout  # secret + one attachment
    assert archive.stat().st_mode & 0o077 == 0  # it holds the signing secret
    target = tmp_path / "restored"
    out = ticketd("restore", str(archive), "--data-dir", str(target))
    assert out.returncode == 0, out.stderr
    assert "restored and verified" in out.stdout
    assert (target / "secret").read_bytes() == (tmp_path / "var" / "secret").read_bytes()
    restored = config_from_dict(
        base_config(
            tmp_path, f"sqlite:///{target / 'ticketd.db'}", instance={"data_dir": str(target)}
        ),
        base_dir=tmp_path,
    )
    sqlite_app.close()
    app = App.open(restored)
    try:
        assert [t.subject for t in Ticket.select().order_by(Ticket.id)] == ["Invoice", "Second"]
        attachment = Attachment.get()
        blob = target / "attachments" / attachment.sha256[:2] / attachment.sha256
        assert blob.read_bytes().startswith(b"%PDF-1.4")
    finally:
        app.close()


def test_restore_into_a_non_empty_data_dir_is_refused(sqlite_app: App, tmp_path) -> None:
    fill(sqlite_app)
    archive = tmp_path / "b.tar.gz"
    assert (
        ticketd(
            "backup", "--config", str(write_config(tmp_path)), "--output", str(archive)
        ).returncode
        == 0
    )
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    out = ticketd("restore", str(archive), "--data-dir", str(target))
    assert out.returncode == 1
    assert "not empty" in out.stderr and "Traceback" not in out.stderr
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_a_tampered_archive_fails_verification_and_leaves_nothing(
    sqlite_app: App, tmp_path
) -> None:
    fill(sqlite_app)
    archive = tmp_path / "b.tar.gz"
    assert (
        ticketd(
            "backup", "--config", str(write_config(tmp_path)), "--output", str(archive)
        ).returncode
        == 0
    )
    tampered = tmp_path / "t.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("attachments/"):
                data = data.replace(b"invoice", b"INVOICE")
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    target = tmp_path / "new"
    out = ticketd("restore", str(tampered), "--data-dir", str(target))
    assert out.returncode == 1
    assert "does not match its checksum" in out.stderr
    assert list(target.iterdir()) == []
    out = ticketd("restore", str(tmp_path / "config.yaml"), "--data-dir", str(tmp_path / "x"))
    assert out.returncode == 1 and "not a ticketd backup" in out.stderr


def test_a_backup_taken_while_the_database_is_written_is_consistent(
    sqlite_app: App, tmp_path
) -> None:
    fill(sqlite_app)
    stop = threading.Event()
    written = []

    def writer() -> None:
        sqlite_app.db.connect(reuse_if_open=True)
        n = 0
        while not stop.is_set():
            n += 1
            written.append(
                spool.enqueue(sqlite_app.db, make_mail(subject=f"Busy {n}"), source="smtp")
            )
        sqlite_app.db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        archive = tmp_path / "live.tar.gz"
        out = ticketd("backup", "--config", str(write_config(tmp_path)), "--output", str(archive))
    finally:
        stop.set()
        thread.join()
    assert out.returncode == 0, out.stderr
    target = tmp_path / "r"
    out = ticketd("restore", str(archive), "--data-dir", str(target))
    assert out.returncode == 0, out.stderr  # integrity_check ok, counts as in the manifest
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert 2 < manifest["rows"]["spool_entry"] <= 2 + len(written)
    assert manifest["rows"]["message"] == Message.select().count()
    assert SpoolEntry.select().count() >= manifest["rows"]["spool_entry"]


def test_a_postgresql_backup_holds_a_pg_dump_that_pg_restore_reads(
    app_factory, pg_url, tmp_path
) -> None:
    from tests.conftest import _truncate_pg

    _truncate_pg(pg_url)
    app = app_factory(pg_url)
    fill(app)
    archive = tmp_path / "pg.tar.gz"
    out = ticketd(
        "backup", "--config", str(write_config(tmp_path, pg_url)), "--output", str(archive)
    )
    assert out.returncode == 0, out.stderr
    assert "postgresql database" in out.stdout
    target = tmp_path / "r"
    out = ticketd("restore", str(archive), "--data-dir", str(target))
    assert out.returncode == 0, out.stderr and "pg_restore" in out.stdout
    listing = subprocess.run(
        ["pg_restore", "--list", str(target / "database.pgdump")], capture_output=True, text=True
    )
    assert listing.returncode == 0 and "TABLE public ticket" in listing.stdout
