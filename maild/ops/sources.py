"""Reading archives for ``ticketd import``: mbox files and Maildir folders, one message at a time.

mbox: a message starts at a ``From `` line that looks like a real separator (``From SENDER DATE``
with a year), so a body line such as "From here on ..." that a careless writer did not escape
stays in its message instead of splitting it; ``>From `` lines are unescaped (mboxrd). Maildir:
the files under ``cur/`` and ``new/`` in name order (dot files skipped). Anything that does not start with mail
headers (a picture, an empty file, a stray fragment) is reported and skipped, never spooled.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from maild.errors import TicketdError

FROM_LINE = re.compile(rb"^From \S+ .*\b\d{4}\b.*\r?\n?$")
ESCAPED_FROM = re.compile(rb"^>(>*From )")
HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]?.*")  # field name: printable ASCII except ':'
WANTED = (b"from:", b"date:", b"message-id:", b"subject:", b"to:")


class SourceError(TicketdError):
    """An archive that cannot be read at all (missing, not an mbox or a Maildir)."""


@dataclass(frozen=True)
class Item:
    where: str  # "mbox message 12" or the Maildir file name, for messages to the user
    raw: bytes


def not_mail(raw: bytes) -> str | None:
    """Why ``raw`` is not a mail message, or None when it starts with mail headers."""
    if not raw.strip():
        return "empty"
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    lines = [line for line in head.splitlines() if line and line[:1] not in (b" ", b"\t")]
    if not lines or not all(HEADER_LINE.match(line) for line in lines[:3]):
        return "does not start with mail headers"
    if not any(line.lower().startswith(WANTED) for line in lines):
        return "has no From, Date, Message-ID, Subject or To header"
    return None


def read_mbox(path: Path) -> Iterator[Item]:
    if not path.is_file():
        raise SourceError(f"{path}: not a file (an mbox is one file)")
    number = 0
    lines: list[bytes] = []
    started = False
    with path.open("rb") as fh:
        for line in fh:
            if FROM_LINE.match(line):
                if started:
                    number += 1
                    yield Item(f"mbox message {number}", b"".join(lines))
                lines = []
                started = True
                continue
            if not started:
                if line.strip():
                    started = True  # no separator at the top: take the text as it is
                else:
                    continue
            lines.append(ESCAPED_FROM.sub(rb"\1", line))
    if started and lines:
        number += 1
        yield Item(f"mbox message {number}", b"".join(lines))


def read_maildir(path: Path) -> Iterator[Item]:
    if not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise SourceError(f"{path}: not a Maildir (no cur/ or new/ folder)")
    for folder in ("cur", "new"):
        if not (path / folder).is_dir():
            continue
        for file in sorted((path / folder).iterdir()):
            if file.name.startswith(".") or not file.is_file():
                continue  # Maildir's own dot files and anything that is not a message file
            try:
                raw = file.read_bytes()
            except OSError as exc:
                raise SourceError(f"{file}: cannot read: {exc.strerror or exc}") from exc
            yield Item(f"{folder}/{file.name}", raw)


def read_source(kind: str, path: Path) -> Iterator[Item]:
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    return read_mbox(path) if kind == "mbox" else read_maildir(path)
