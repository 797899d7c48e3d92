"""``ticketd backup`` and ``ticketd restore``: one archive with the database and the data dir.

Backup: the database first, then the files. On SQLite the online backup API copies a consistent
snapshot while the daemon keeps writing (one read transaction, WAL); on PostgreSQL ``pg_dump
--format=custom`` does the same. Attachments are content-addressed and written before the
transaction that refers to them commits, so copying them *after* the snapshot includes every file
the snapshot names. The archive (tar.gz, mode 0600: it holds the signing secret) carries a
``manifest.json`` with row counts and SHA-256 digests of everything in it.

Restore: into an empty (or new) data dir only; every file is checked against the manifest, the
SQLite database with ``PRAGMA integrity_check`` and its row counts, before the command says done.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maild.app import App
from maild.errors import TicketdError
from maild.store.db import is_sqlite
from maild.store.models import ALL_MODELS

FORMAT = 1
SQLITE_NAME = "ticketd.db"
PG_NAME = "database.pgdump"


class BackupError(TicketdError):
    """A backup or restore that cannot be done (the message says why)."""


@dataclass(frozen=True)
class Summary:
    path: Path
    database: str
    rows: dict[str, int]
    files: int

    def line(self) -> str:
        total = sum(self.rows.values())
        return f"{self.path}: {self.database} database ({total} rows), {self.files} files"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sqlite_path(app: App) -> Path:
    return Path(app.db.database)


def row_counts_sqlite(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return {
            m._meta.table_name: conn.execute(
                f'SELECT COUNT(*) FROM "{m._meta.table_name}"'
            ).fetchone()[0]
            for m in ALL_MODELS
            if m._meta.table_name in names
        }
    finally:
        conn.close()


def backup(app: App, output: Path) -> Summary:
    """Write the archive to ``output`` (atomically: a temporary file renamed into place)."""
    output = output.resolve()
    if output.is_dir():
        raise BackupError(f"--output {output}: is a folder; give a file name")
    with tempfile.TemporaryDirectory(prefix="ticketd-backup-", dir=output.parent) as work:
        stage = Path(work)
        files: dict[str, str] = {}
        if is_sqlite(app.db):
            database = "sqlite"
            snapshot = stage / SQLITE_NAME
            src = sqlite3.connect(sqlite_path(app), timeout=30)
            dst = sqlite3.connect(snapshot)
            try:
                src.backup(dst)  # all pages in one step: one consistent read transaction
            finally:
                dst.close()
                src.close()
            rows = row_counts_sqlite(snapshot)
            files[SQLITE_NAME] = sha256_of(snapshot)
        else:
            database = "postgresql"
            rows = {m._meta.table_name: m.select().count() for m in ALL_MODELS}
            dump = stage / PG_NAME
            pg_dump(app, dump)
            files[PG_NAME] = sha256_of(dump)
        data_dir = app.data_dir
        members: list[tuple[Path, str]] = []
        secret = data_dir / "secret"
        if secret.is_file():
            members.append((secret, "secret"))
        root = data_dir / "attachments"
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.name.startswith(".tmp-"):
                    members.append((path, f"attachments/{path.relative_to(root).as_posix()}"))
        for path, name in members:
            files[name] = sha256_of(path)
        manifest = {
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "database": database,
            "rows": rows,
            "files": files,
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2))
        fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=".ticketd-backup-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            os.chmod(tmp, 0o600)
            with tarfile.open(tmp, "w:gz") as tar:
                tar.add(stage / "manifest.json", arcname="manifest.json")
                dbname = SQLITE_NAME if database == "sqlite" else PG_NAME
                tar.add(stage / dbname, arcname=dbname)
                for path, name in members:
                    tar.add(path, arcname=name)
            os.replace(tmp, output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return Summary(output, database, rows, len(members))


def pg_dump(app: App, target: Path) -> None:
    db: Any = app.db
    params = db.connect_params
    cmd = ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", db.database]
    env = dict(os.environ)
    if params.get("host"):
        cmd[1:1] = ["--host", str(params["host"])]
    if params.get("port"):
        cmd[1:1] = ["--port", str(params["port"])]
    if params.get("user"):
        cmd[1:1] = ["--username", str(params["user"])]
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not installed (apt-get install postgresql-client)")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1:]}")


def restore(archive: Path, data_dir: Path) -> Summary:
    """Unpack ``archive`` into ``data_dir`` (which must be empty or absent) and verify it."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"--data-dir {data_dir}: not empty; restore only into an empty folder")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o750)
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                manifest = read_manifest(tar, archive)
                tar.extractall(data_dir, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise BackupError(f"{archive}: not a ticketd backup: {exc}") from exc
        return verify(data_dir, manifest)
    except BaseException:
        for child in data_dir.iterdir():  # a failed restore leaves the folder empty again
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise


def read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    try:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise KeyError("manifest.json")
        return dict(json.load(member))
    except (KeyError, ValueError) as exc:
        raise BackupError(f"{archive}: no readable manifest.json: {exc}") from exc


def verify(data_dir: Path, manifest: dict[str, Any]) -> Summary:
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    files: dict[str, str] = manifest["files"]
    for name, digest in files.items():
        path = data_dir / name
        if not path.is_file():
            raise BackupError(f"verification failed: {name} is missing")
        if sha256_of(path) != digest:
            raise BackupError(f"verification failed: {name} does not match its checksum")
    rows = dict(manifest["rows"])
    if manifest["database"] == "sqlite":
        db = data_dir / SQLITE_NAME
        conn = sqlite3.connect(db)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
        if result != "ok":
            raise BackupError(f"verification failed: integrity_check says {result}")
        if row_counts_sqlite(db) != rows:
            raise BackupError("verification failed: row counts differ from the manifest")
    attachments = sum(1 for name in files if name.startswith("attachments/"))
    return Summary(data_dir, manifest["database"], rows, attachments)
