"""Pipe intake: ``ticketd inject`` for MTA pipe transports and scripts.

Exit statuses follow sysexits.h as MTAs expect: 0 stored, 75 (EX_TEMPFAIL) could not spool (the MTA
keeps the message and retries), 65 (EX_DATAERR) input that can never be accepted (over the size
limit). Spooling happens first; processing afterwards is a convenience that never changes the exit
status, because once spooled the message is safe.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from maild import spool
from maild.app import App
from maild.errors import SpoolError, TooLargeError
from maild.store.models import SpoolEntry

EX_OK, EX_DATAERR, EX_NOINPUT, EX_TEMPFAIL = 0, 65, 66, 75


@dataclass(frozen=True)
class Injected:
    name: str
    entry_id: int


def read_limited(stream: BinaryIO, limit: int, name: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"{name}: message is larger than smtp_in.max_message_bytes ({limit})")
    return data


def inject(
    app: App,
    paths: Iterable[Path],
    *,
    stdin: BinaryIO | None = None,
    mail_from: str = "",
    rcpt_tos: Iterable[str] = (),
    process: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Spool each file (or stdin), then process what was spooled unless ``process`` is False."""
    out = out or sys.stdout  # looked up now: the streams may have been replaced since import
    err = err or sys.stderr
    limit = app.config.smtp_in.max_message_bytes
    if len(mail_from) > spool.MAX_SENDER_CHARS:  # the spool cannot keep it: never acceptable
        print(f"ticketd: --from is longer than {spool.MAX_SENDER_CHARS} characters", file=err)
        return EX_DATAERR
    sources: list[tuple[str, Path | None]] = [(str(p), p) for p in paths] or [("<stdin>", None)]
    status = EX_OK
    injected: list[Injected] = []
    for name, path in sources:
        try:
            if path is None:
                raw = read_limited(stdin or sys.stdin.buffer, limit, name)
            else:
                with path.open("rb") as fh:
                    raw = read_limited(fh, limit, name)
        except TooLargeError as exc:
            print(f"ticketd: {exc}", file=err)
            status = max(status, EX_DATAERR) if status != EX_TEMPFAIL else status
            continue
        except OSError as exc:
            print(f"ticketd: {name}: cannot read: {exc.strerror or exc}", file=err)
            status = EX_NOINPUT if status == EX_OK else status
            continue
        try:
            entry_id = spool.enqueue(
                app.db, raw, source="pipe", mail_from=mail_from, rcpt_tos=list(rcpt_tos)
            )
        except SpoolError as exc:
            print(f"ticketd: {name}: {exc}", file=err)
            status = EX_TEMPFAIL
            continue
        injected.append(Injected(name, entry_id))
    if process and injected:
        from maild.routing.loader import RulesError
        from maild.worker import make_worker

        try:
            make_worker(app).run_once(ids=[i.entry_id for i in injected])
        except RulesError as exc:
            # Spooled is stored: the daemon processes these once the rules are fixed.
            print(f"ticketd: not processed, the rules are broken: {exc}", file=err)
        except Exception as exc:
            # Still stored (e.g. "database is locked" while the daemon writes): exit 0 all the
            # same, or an MTA would bounce mail that the daemon turns into a ticket anyway.
            print(f"ticketd: spooled, not processed yet: {type(exc).__name__}: {exc}", file=err)
    for item in injected:
        try:
            entry = SpoolEntry.get_by_id(item.entry_id)
        except Exception as exc:
            print(f"{item.name}: spool #{item.entry_id} spooled ({exc})", file=out)
            continue
        outcome = entry.result if entry.status == "done" else entry.status
        if entry.status == "quarantined":
            outcome = f"quarantined: {(entry.last_error or '').splitlines()[0]}"
        print(f"{item.name}: spool #{item.entry_id} {outcome or 'spooled'}", file=out)
    return status
