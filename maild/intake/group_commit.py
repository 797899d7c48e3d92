"""Group commit of the spool: one thread writes the messages of all concurrent SMTP sessions, as
many as are waiting in ONE transaction, and each session answers 250 only once the commit that
holds its message is done (451 for all of them if it fails).

On SQLite the writer asks for the write lock in steps of about 2 ms
(:func:`maild.store.db.write_tx`): the worker process commits often and briefly, and intake
must get the lock in the gaps. It gives up (451) after ``database.busy_timeout_ms``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from peewee import Database, DatabaseError, InterfaceError, OperationalError

from maild import spool
from maild.errors import SpoolError
from maild.store.db import write_tx

log = logging.getLogger("ticketd.smtp")

MAX_GROUP = 200  # messages in one commit at most


@dataclass(frozen=True, slots=True)
class Pending:
    raw: bytes
    mail_from: str
    rcpt_tos: tuple[str, ...]
    done: concurrent.futures.Future


class SpoolWriter:
    """The thread that commits spool rows for SMTP intake; ``submit`` returns a future id."""

    def __init__(self, db: Database, *, source: str) -> None:
        self.db = db
        self.source = source
        self.queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)

    def submit(
        self, raw: bytes, mail_from: str, rcpt_tos: Sequence[str]
    ) -> concurrent.futures.Future:
        done: concurrent.futures.Future = concurrent.futures.Future()
        self.queue.put(Pending(raw, mail_from, tuple(rcpt_tos), done))
        return done

    def _run(self) -> None:
        running = True
        while running:
            first = self.queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    running = False
                    break
                group.append(item)
            try:
                ids = self._commit(group)
            except SpoolError as exc:
                for item in group:
                    item.done.set_exception(exc)
            except Exception as exc:  # never leave a session waiting
                log.exception("spool writer failed")
                for item in group:
                    item.done.set_exception(SpoolError(f"cannot write the spool: {exc}"))
            else:
                for item, entry_id in zip(group, ids, strict=True):
                    item.done.set_result(entry_id)
        self.db.close()

    def _commit(self, group: list[Pending]) -> list[int]:
        try:
            with write_tx(self.db):
                return [
                    spool.add(
                        item.raw,
                        source=self.source,
                        mail_from=item.mail_from,
                        rcpt_tos=item.rcpt_tos,
                    )
                    for item in group
                ]
        except (OperationalError, InterfaceError, DatabaseError, OSError) as exc:
            raise SpoolError(f"cannot write the spool: {exc}") from exc
