"""The worker: claims spooled messages in arrival order and runs the pipeline over each.

read (parse, classify: :mod:`maild.pipeline.inbound`) -> store (de-duplicate, thread, write to
the ticket: :func:`maild.store.intake.store_message`) -> the stages after threading, in the
order :mod:`maild.compose_stages` declares them (rules, SLA, agents, automatic mail). The store
step, the stages and marking the spool row done are ONE transaction. A crash anywhere before that
commit leaves the row pending, and the next pass does the whole message again; the ``dedup_key``
unique index makes a second store of the same message impossible. ``run_once`` is a single pass
for tests, ``inject`` and the daemon; the daemon only adds waiting.
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
from maild.store.db import write_tx
from maild.store.intake import Intake, store_message
from maild.store.models import Message, SpoolEntry

log = logging.getLogger("ticketd.worker")

CLAIM_CHUNK = 200  # spool ids named in one claim query (Worker.run_once with ids)


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
                entry = spool.claim(
                    self.app.db,
                    worker=self.id,
                    now=self.app.clock.now(),
                    lease_seconds=cfg.lease_seconds,
                    ids=chunk,
                )
                if entry is None:
                    break
                self.process(entry)
                done += 1
        return done

    def process(self, entry: SpoolEntry) -> str:
        """Run the pipeline over one claimed row; never raises for a bad message."""
        cfg = self.app.config.worker
        started = time.perf_counter()
        try:
            result = self._process(entry)
        except ParseError as exc:
            spool.quarantine_now(self.app.db, entry, f"unparseable: {exc}")
            log.warning("spool #%s quarantined: unparseable: %s", entry.id, exc)
            return "quarantined"
        except Exception as exc:
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
        PROCESSING_SECONDS.observe(time.perf_counter() - started)
        log.info("spool #%s %s", entry.id, result)
        return result

    def _process(self, entry: SpoolEntry) -> str:
        app = self.app
        read = inbound.read(
            bytes(entry.raw),
            mail_from=entry.mail_from,
            rcpt_tos=entry.rcpt_tos,
            token=self.loop_token,
            support=app.config.support_addresses,
            source=entry.source,
        )
        now = app.clock.now()
        try:
            with write_tx(app.db):
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
            with write_tx(app.db):
                spool.finish(
                    entry.id,
                    worker=self.id,
                    result="duplicate (concurrent)",
                    now=now,
                    keep_raw=True,
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
