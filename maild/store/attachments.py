"""Attachments on disk: content-addressed files under ``data_dir/attachments`` and safe names.

The file name a sender chose is only ever metadata: it is sanitized for display and download and
never used as a path. The bytes live at ``attachments/<sha[:2]>/<sha>``, written to a temporary file
and renamed into place, so a crash never leaves a half-written attachment under its final name.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
MAX_NAME_BYTES = 200


def sanitize_filename(
    name: str | None, *, content_type: str = "application/octet-stream", index: int = 1
) -> str:
    """A display name that is safe anywhere: no directories, controls, or leading dots."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # drop any directory part, Windows too
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if name in ("", "_"):
        import mimetypes  # here: a read command (tickets show) imports this module

        ext = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
        name = f"attachment-{index}{ext}"
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 16 else ""
        keep = MAX_NAME_BYTES - len(ext.encode()) - 1
        stem = (stem if dot else name).encode("utf-8")[:keep].decode("utf-8", "ignore")
        name = f"{stem}.{ext}" if ext else stem
    return name


def store_blob(root: Path, payload: bytes) -> tuple[str, Path]:
    """Write ``payload`` under ``root`` by its SHA-256 (once); return (hex digest, path)."""
    digest = hashlib.sha256(payload).hexdigest()
    folder = root / digest[:2]
    path = folder / digest
    if path.exists() and path.stat().st_size == len(payload):
        return digest, path
    folder.mkdir(parents=True, exist_ok=True)
    import tempfile  # here: it costs a CLI command's start-up (shutil, random) otherwise

    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest, path


def blob_path(root: Path, digest: str) -> Path:
    """Where the bytes of ``digest`` live (the digest is ours, never a sender's string)."""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"not a SHA-256 digest: {digest!r}")
    return root / digest[:2] / digest
