"""The worker: claims spooled messages in arrival order, in batches, and runs the pipeline.

read (parse, classify: :mod:`maild.pipeline.inbound`) -> store (de-duplicate, thread, write to
the ticket: :func:`maild.store.intake.store_message`) -> the stages after threading, in the
order :mod:`maild.compose_stages` declares them (rules, SLA, agents, automatic mail).

A pass claims up to :data:`BATCH_ROWS` rows in one transaction, reads (parses) them all before
any write lock is taken, then stores them in write transactions of at most about
:data:`BATCH_SECONDS` each: one commit for many messages. Each message runs in its own savepoint:
a bad one is rolled back alone and recorded as failed (retried later, then quarantined) in the same
transaction, so the others are never failed or held back by it. Storing a message, its stages and
marking its spool row done commit together; a crash before that commit leaves the rows pending
and the next pass does them again, once (the ``dedup_key`` unique index makes a second store of
the same message impossible). ``run_once`` is a single pass for tests, ``inject`` and the worker
process (:mod:`maild.workerproc`).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Sequence

from peewee import IntegrityError

from maild import spool
from maild.agents.desk import AgentDesk
from maild.app import App
from maild.compose_stages import compose
from maild.ops.instruments import PROCESSING_SECONDS
from maild.pipeline import inbound
from maild.pipeline.addresses import Signer, loop_token
from maild.pipeline.parse import ParseError
from maild.routing.reload import RulesHolder
from maild.stage import Stage, Stored, run_stages
from maild.store import claims
from maild.store.db import is_sqlite, write_tx
from maild.store.intake import Intake, store_message
from maild.store.models import Message, SpoolEntry

log = logging.getLogger("ticketd.worker")

CLAIM_CHUNK = 200  # spool ids named in one claim query (Worker.run_once with ids)
BATCH_ROWS = 50  # spool rows claimed by one claim transaction
BATCH_SECONDS = 0.1  # a write transaction of a batch is closed once it has run this long
# SQLite: the pause after each write transaction, so that intake (waiting for the one write lock
# in steps of about 2 ms, maild/intake/group_commit.py) gets it between two of ours.
YIELD_SECONDS = 0.004


class Worker:
    """Processes spooled messages. One per thread; a pass needs no other state."""

    def __init__(
        self, app: App, stages: Sequence[Stage] = (), agents: AgentDesk | None = None
    ) -> None:
        self.app = app
        self.stages = tuple(stages)
        self.agents = agents  # tells agents' mail from customers' (None: everyone is a customer)
        self.id = claims.worker_id(str(threading.get_ident() % 100000))
        signer = Signer(app.config.prefix, app.secret)
        self.intake = Intake(app, signer, agents.read if agents is not None else None)
        self.loop_token = loop_token(app.secret)
        self.sqlite = is_sqlite(app.db)

    def run_once(
        self, ids: Sequence[int] = (), limit: int | None = None, stop: threading.Event | None = None
    ) -> int:
        """Process due spool rows (or only ``ids``) until none is left; return how many.

        ``ids`` are claimed oldest first, CLAIM_CHUNK at a time: a claim's query names the ids
        it may take, and naming all of 10,000 injected files in each of 10,000 claims made
        ``ticketd inject`` quadratic."""
        done = 0
        cfg = self.app.config.worker
        ordered = sorted(set(ids))
        chunks = [ordered[i : i + CLAIM_CHUNK] for i in range(0, len(ordered), CLAIM_CHUNK)]
        for chunk in chunks or [[]]:  # [[]]: no ids, any due row
            while (limit is None or done < limit) and not (stop is not None and stop.is_set()):
                entries = spool.claim_batch(
                    self.app.db,
                    worker=self.id,
                    now=self.app.clock.now(),
                    lease_seconds=cfg.lease_seconds,
                    limit=BATCH_ROWS if limit is None else min(BATCH_ROWS, limit - done),
                    ids=chunk,
                )
                if not entries:
                    break
                self.process_batch(entries)
                done += len(entries)
        return done

    def process(self, entry: SpoolEntry) -> str:
        """Run the pipeline over one claimed row; never raises for a bad message."""
        return self.process_batch([entry])[0]

    def process_batch(self, entries: Sequence[SpoolEntry]) -> list[str]:
        """Run the pipeline over claimed rows, in order; each row's result (never raises for a
        bad message)."""
        results: dict[int, str] = {}
        ready: list[tuple[SpoolEntry, inbound.Inbound, float]] = []
        for entry in entries:  # parsing and classifying need no lock
            started = time.perf_counter()
            try:
                ready.append((entry, self._read(entry), started))
            except ParseError as exc:
                spool.quarantine_now(self.app.db, entry, f"unparseable: {exc}")
                log.warning("spool #%s quarantined: unparseable: %s", entry.id, exc)
                results[entry.id] = "quarantined"
            except Exception as exc:
                results[entry.id] = self._failed(entry, exc)
        i = 0
        while i < len(ready):
            opened = time.perf_counter()
            logs: list[tuple[SpoolEntry, str, float]] = []
            with write_tx(self.app.db):
                while i < len(ready) and (not logs or time.perf_counter() - opened < BATCH_SECONDS):
                    entry, read, started = ready[i]
                    i += 1
                    try:
                        result = self._store(entry, read)  # its own savepoint: fails alone
                    except Exception as exc:
                        results[entry.id] = self._failed(entry, exc)
                        continue
                    results[entry.id] = result
                    logs.append((entry, result, started))
            if self.sqlite:
                time.sleep(YIELD_SECONDS)
            for entry, result, started in logs:  # committed: now they count as processed
                PROCESSING_SECONDS.observe(time.perf_counter() - started)
                log.info("spool #%s %s", entry.id, result)
        return [results[entry.id] for entry in entries]

    def _failed(self, entry: SpoolEntry, exc: Exception) -> str:
        """Record a failed attempt of one row (retry later, or quarantine); its status."""
        cfg = self.app.config.worker
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        status = spool.fail(
            self.app.db,
            entry,
            error,
            now=self.app.clock.now(),
            max_attempts=cfg.max_attempts,
            retry_seconds=cfg.retry_seconds,
        )
        log.error(
            "spool #%s failed (attempt %s, now %s): %s", entry.id, entry.attempts, status, exc
        )
        return status

    def _read(self, entry: SpoolEntry) -> inbound.Inbound:
        return inbound.read(
            bytes(entry.raw),
            mail_from=entry.mail_from,
            rcpt_tos=entry.rcpt_tos,
            token=self.loop_token,
            support=self.app.config.support_addresses,
            source=entry.source,
        )

    def _store(self, entry: SpoolEntry, read: inbound.Inbound) -> str:
        """Store one read message and mark its row done, inside the caller's transaction."""
        app = self.app
        now = app.clock.now()
        try:
            with app.db.atomic():  # a savepoint: a failure rolls back this message only
                stored = store_message(self.intake, entry, read.msg, read.verdict, read.sender, now)
                keep = not isinstance(stored, Stored)
                result = stored if isinstance(stored, str) else self._run_stages(stored)
                result = f"{result} from {read.sender.email} ({read.verdict.kind})"
                if not spool.finish(
                    entry.id, worker=self.id, result=result, now=now, keep_raw=keep
                ):
                    raise _AlreadyDone
        except _AlreadyDone:
            return "already processed by another worker"
        except IntegrityError:
            # Another worker stored the same Message-ID between our check and our insert. Any
            # other constraint violation is a failure (retried, then quarantined), never a drop.
            if not Message.select().where(Message.dedup_key == read.msg.dedup_key).exists():
                raise
            spool.finish(
                entry.id, worker=self.id, result="duplicate (concurrent)", now=now, keep_raw=True
            )
            return "duplicate (concurrent)"
        return result

    def _run_stages(self, stored: Stored) -> str:
        """Run the stages over a stored message; the words of the spool row's result."""
        outcome = run_stages(self.stages, stored)
        word = "new" if stored.created else "append"
        extra = f" [{'; '.join(outcome.words)}]" if outcome.words else ""
        return f"{word} {self.app.config.prefix}-{stored.ticket.id}{extra}"


class _AlreadyDone(Exception):
    pass


def make_worker(app: App, rules: RulesHolder | None = None) -> Worker:
    """A worker with every stage this installation has (:mod:`maild.compose_stages`).

    Without ``rules`` the rules folder is loaded now; broken rules raise RulesError.
    """
    desk, stages = compose(app, rules)
    return Worker(app, stages=stages, agents=desk)
