"""The worker: claims spooled messages in arrival order and runs the pipeline stages over each.

parse -> classify -> thread -> extract -> store (+ the hooks that rules and outbound mail add), the
store step and marking the spool row done in ONE transaction. A crash anywhere before that commit
leaves the row pending, and the next pass does the whole message again; the ``dedup_key`` unique
index makes a second store of the same message impossible. ``run_once`` is a single pass for tests,
``inject`` and the daemon; the daemon only adds waiting.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from peewee import IntegrityError

from maild import spool
from maild.app import App
from maild.ops.instruments import PROCESSING_SECONDS
from maild.pipeline import participants
from maild.pipeline.addresses import (
    LOOP_HEADER,
    Signer,
    base_address,
    is_support_address,
    loop_token,
)
from maild.pipeline.authres import dmarc_fails, domain_of, our_results
from maild.pipeline.classify import Classification, classify
from maild.pipeline.message import Address, InboundMessage
from maild.pipeline.parse import ADDRESS_RE, ParseError, html_to_text, parse_message
from maild.pipeline.quotes import cut_html_quote, visible_text
from maild.pipeline.thread import ThreadMatch, find_ticket, strip_reply_prefixes
from maild.routing.reload import RulesHolder
from maild.routing.schema import TicketView
from maild.sla import lifecycle, survey
from maild.store import claims
from maild.store import tickets as store
from maild.store.db import is_sqlite, write_tx
from maild.store.models import Message, SpoolEntry, Ticket, Watcher

if TYPE_CHECKING:
    from maild.agents.desk import AgentDesk, AgentMail

log = logging.getLogger("ticketd.worker")

CLAIM_CHUNK = 200  # spool ids named in one claim query (Worker.run_once with ids)


@dataclass
class StoreContext:
    """What a hook sees inside the message's transaction."""

    app: App
    msg: InboundMessage
    verdict: Classification
    ticket: Ticket
    message: Message
    event: str  # new_ticket | customer_reply | agent_reply | agent_note | robot | satisfaction
    actor: str
    source: str = ""  # the spool row's source: smtp | imap | pipe | import | web | api
    ticket_before: TicketView | None = None  # the ticket as it was before this message
    agent: AgentMail | None = None  # the From is an agent's: trusted or a forgery (maild.agents)
    replied: bool = False  # a rule already answered the requester (no acknowledgement then)
    no_auto_mail: str | None = None  # why the sender gets no automatic mail (their DMARC failed)
    outcome: list[str] = field(default_factory=list)  # words for the log line


Hook = Callable[[StoreContext], None]


class Worker:
    """Processes spooled messages. One per thread; a pass needs no other state."""

    def __init__(
        self, app: App, hooks: Sequence[Hook] = (), agents: AgentDesk | None = None
    ) -> None:
        self.app = app
        self.hooks = list(hooks)
        self.agents = agents  # tells agents' mail from customers' (None: everyone is a customer)
        self.id = claims.worker_id(str(threading.get_ident() % 100000))
        self.signer = Signer(app.config.prefix, app.secret)
        self.loop_token = loop_token(app.secret)

    # -- passes ---------------------------------------------------------------------------

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

    # -- the pipeline ---------------------------------------------------------------------

    def _process(self, entry: SpoolEntry) -> str:
        app = self.app
        msg = parse_message(
            bytes(entry.raw), mail_from=entry.mail_from, rcpt_tos=json.loads(entry.rcpt_tos or "[]")
        )
        verdict = classify_with_loop(msg, self.loop_token, app.config.support_addresses)
        sender = sender_of(msg)
        if sender is None:
            raise ParseError("no sender: the message has no From address and no envelope sender")
        now = app.clock.now()
        try:
            with write_tx(app.db):
                duplicate = Message.get_or_none(Message.dedup_key == msg.dedup_key)
                if duplicate is not None:
                    result = f"duplicate of {app.config.prefix}-{duplicate.ticket_id}"
                    keep = True
                else:
                    match = self._thread(msg, verdict)
                    result, keep = self._store(entry, msg, verdict, sender, match, now)
                result = f"{result} from {sender.email} ({verdict.kind})"
                if not spool.finish(
                    entry.id, worker=self.id, result=result, now=now, keep_raw=keep
                ):
                    raise _AlreadyDone
        except _AlreadyDone:
            return "already processed by another worker"
        except IntegrityError:
            # Another worker stored the same Message-ID between our check and our insert. Any
            # other constraint violation is a failure (retried, then quarantined), never a drop.
            if not Message.select().where(Message.dedup_key == msg.dedup_key).exists():
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

    def _thread(self, msg: InboundMessage, verdict: Classification) -> ThreadMatch | None:
        def ticket_of_message_id(message_id: str) -> int | None:
            row = (
                Message.select(Message.ticket)
                .where(Message.message_id == message_id)
                .order_by(Message.id)
                .first()
            )
            return row.ticket_id if row else None

        return find_ticket(
            msg,
            signer=self.signer,
            support=self.app.config.support_addresses,
            exists=lambda n: Ticket.select().where(Ticket.id == n).exists(),
            ticket_of_message_id=ticket_of_message_id,
            extra_message_ids=verdict.original_message_ids,
        )

    def _store(
        self,
        entry: SpoolEntry,
        msg: InboundMessage,
        verdict: Classification,
        sender: Address,
        match: ThreadMatch | None,
        now,
    ) -> tuple[str, bool]:
        app = self.app
        prefix = app.config.prefix
        robot = verdict.is_robot
        if match is None and verdict.kind in ("bounce", "autoreply"):
            return f"ignored: {verdict.kind} that concerns no ticket", True
        ticket = self._locked_ticket(match.number) if match else None
        author = None
        if ticket is not None and not robot and self.agents is not None:
            author = self.agents.read(msg, sender, ticket)
        agent = author if author is not None and author.trusted else None
        visible = reply_text(msg) if ticket is not None else ""  # quotes stripped, computed once
        # Who may act on the ticket (maild.pipeline.participants); None: an agent's From, a robot.
        standing = self._standing(msg, sender, ticket) if not robot and author is None else None
        note = standing is not None and standing.handling == participants.NOTE
        rating = None
        if ticket is not None and standing is not None and standing.why == "requester":
            # A rating answering our survey is stored and neither re-opens a resolved ticket nor
            # starts a follow-up of a closed one.
            rating = survey.satisfaction_reply(
                ticket, msg.subject, visible, msg.in_reply_to, signed=standing.signed
            )
        parent = None
        if standing is not None and standing.handling == participants.NEW_TICKET:
            parent, ticket = ticket, None  # a stranger's mail opens a ticket linked to this one
        elif (
            ticket is not None
            and ticket.status == "closed"
            and not robot
            and agent is None
            and rating is None
            and not note
        ):
            parent, ticket = ticket, None  # a reply to a closed ticket starts a follow-up
        created = ticket is None
        before = None if created or robot else TicketView.from_ticket(ticket)
        if created:
            ticket = self._new_ticket(msg, sender, now, parent)
        assert ticket is not None  # the threaded ticket, or the one just created
        event = "robot" if robot else ("new_ticket" if created else "customer_reply")
        body = msg.text if created else visible
        kind = "robot" if robot else "customer"
        if agent is not None:  # a trusted agent's reply or note (maild.agents.desk)
            event, body, kind = agent.event, agent.body, agent.kind
        elif note:  # kept for the agents, flagged; it changes nothing on the ticket
            event, kind = "non_participant", participants.NON_PARTICIPANT_KIND
        message = Message.create(
            ticket=ticket,
            direction="in",
            kind=kind,
            message_id=msg.message_id or msg.dedup_key,
            dedup_key=msg.dedup_key,
            from_addr=sender.email,
            from_name=sender.name,
            to_addrs=json.dumps([a.email for a in msg.to]),
            cc_addrs=json.dumps([a.email for a in msg.cc]),
            subject=msg.subject,
            body=body,
            full_text=msg.text,
            html=msg.html,
            in_reply_to=" ".join(msg.in_reply_to),
            references=" ".join(msg.references),
            classification=verdict.kind,
            raw=msg.raw,
            spool_entry=entry.id,
            created_at=now,
        )
        refused = store.store_attachments(
            message,
            msg.attachments,
            root=app.data_dir / "attachments",
            max_bytes=app.config.attachments.max_bytes,
            max_count=app.config.attachments.max_count,
        )
        actor = sender.email
        if created:
            store.add_event(
                ticket,
                "created",
                actor=actor,
                at=now,
                message=message,
                via=entry.source,
                parent=f"{prefix}-{parent.id}" if parent else None,
            )
            if parent is not None:
                store.add_event(
                    parent, "followup", actor=actor, at=now, followup=f"{prefix}-{ticket.id}"
                )
        else:
            store.add_event(
                ticket,
                "message",
                actor=actor,
                at=now,
                message=message,
                threaded_by=match.how if match else None,
                kind=message.kind,
            )
        if refused:
            store.add_event(
                ticket,
                "attachments_refused",
                actor="system",
                at=now,
                message=message,
                refused=refused,
            )
        if robot:
            store.add_event(
                ticket,
                "robot_mail",
                actor="system",
                at=now,
                message=message,
                classification=verdict.kind,
                reasons=list(verdict.reasons),
                bounced=list(verdict.bounced_recipients),
            )
        elif note:
            store.add_event(ticket, "non_participant", actor=actor, at=now, message=message)
        elif agent is None:
            cc = [
                a
                for a in (*msg.to, *msg.cc)
                if not is_support_address(a.email, app.config.support_addresses)
                and a.email != sender.email
            ]
            # Only the ticket's own people add watchers: the subject tag alone threads a
            # stranger's mail here, and watchers get the agents' answers.
            known = (
                created
                or sender.email == ticket.requester.email
                or (ticket.watchers.where(Watcher.email == sender.email).exists())
            )
            added = store.add_watchers(ticket, cc) if known else []
            if added:
                store.add_event(ticket, "watchers", actor=actor, at=now, added=added)
            if rating is not None:
                # The hooks see it as event "satisfaction" (no rules, no SLA change).
                lifecycle.record_satisfaction(ticket, rating, actor=actor, at=now, message=message)
                event = "satisfaction"
            elif not created and ticket.status in ("pending", "resolved"):
                lifecycle.set_status(
                    app,
                    None,
                    ticket,
                    "open",
                    actor=actor,
                    at=now,
                    message=message,
                    reason="customer replied",
                )
        ticket.updated_at = now
        ticket.save()
        ctx = StoreContext(
            app=app,
            msg=msg,
            verdict=verdict,
            ticket=ticket,
            message=message,
            event=event,
            actor=actor,
            source=entry.source,
            ticket_before=before,
            agent=author,
            no_auto_mail=self._no_auto_mail(msg, sender),
        )
        for hook in self.hooks:
            hook(ctx)
        word = "new" if created else "append"
        extra = f" [{'; '.join(ctx.outcome)}]" if ctx.outcome else ""
        return f"{word} {prefix}-{ticket.id}{extra}", False

    def _standing(
        self, msg: InboundMessage, sender: Address, ticket: Ticket | None
    ) -> participants.Standing | None:
        """The sender's standing on ``ticket`` (None for a new ticket)."""
        if ticket is None:
            return None
        support = self.app.config.support_addresses
        return participants.standing(
            sender.email,
            requester=ticket.requester.email,
            watchers=[w.email for w in ticket.watchers],
            signed=participants.at_signed_address(msg.recipients, ticket.id, self.signer, support),
            mode=self.app.config.threading.non_participants,
        )

    def _no_auto_mail(self, msg: InboundMessage, sender: Address) -> str | None:
        """Why the sender must get no automatic mail: our MTA saw their domain fail DMARC, so
        the From is forged and answering it would spend the real owner's budget."""
        authserv = self.app.config.agents.authserv_id
        domain = domain_of(sender.email)
        if authserv and dmarc_fails(our_results(msg.headers, authserv), domain):
            return f"Authentication-Results {authserv}: dmarc=fail header.from={domain}"
        return None

    def _locked_ticket(self, number: int) -> Ticket:
        """The ticket, on PostgreSQL with its row locked until the commit: two messages for one
        ticket (two agents answering at once) then apply one after the other and neither
        overwrites the other's changes. SQLite's write transaction serialises them already."""
        query = Ticket.select().where(Ticket.id == number)
        if not is_sqlite(self.app.db):
            # FK inserts (KEY SHARE) still pass. peewee takes the clause as a string; its stub
            # only allows a bool.
            query = query.for_update("FOR NO KEY UPDATE")  # type: ignore[arg-type]
        return query.get()

    def _new_ticket(self, msg: InboundMessage, sender: Address, now, parent: Ticket | None):
        support = self.app.config.support_addresses
        to_support = next(
            (base_address(r) for r in msg.recipients if is_support_address(r, support)), support[0]
        )
        subject = strip_reply_prefixes(msg.subject) or "(no subject)"
        return Ticket.create(
            subject=subject[:5000],
            requester=store.upsert_contact(sender),
            support_address=to_support,
            parent=parent,
            created_at=now,
            updated_at=now,
        )


class _AlreadyDone(Exception):
    pass


def sender_of(msg: InboundMessage) -> Address | None:
    """Who wrote: From, else Sender, Reply-To, the envelope sender, Return-Path."""
    if msg.from_addr is not None:
        return msg.from_addr
    candidates = [
        msg.header("sender") or "",
        *(a.email for a in msg.reply_to),
        msg.envelope_from,
        msg.header("return-path") or "",
    ]
    for value in candidates:
        found = ADDRESS_RE.search(value)
        if found:
            return Address(email=found.group(0).lower())
    return None


def classify_with_loop(msg: InboundMessage, token: str, support: Sequence[str]) -> Classification:
    """The classifier's verdict, plus our own loop header and mail from our own addresses."""
    # parse_message always keeps the parsed message; a value built without one (a test, a
    # re-parse) is parsed here rather than handing None to the classifier.
    em = msg.email
    if em is None:
        em = email.message_from_bytes(msg.raw, policy=email.policy.default)
    verdict = classify(em, envelope_from=msg.envelope_from)
    extra = []
    if any(token in value for value in msg.header_all(LOOP_HEADER)):
        extra.append(f"{LOOP_HEADER}: our own mail")
    if msg.from_addr is not None and is_support_address(msg.from_addr.email, support):
        extra.append("sent from a support address")
    if not extra:
        return verdict
    kind = verdict.kind if verdict.is_robot else "auto-generated"
    return Classification(
        kind=kind,
        reasons=(*verdict.reasons, *extra),
        bounced_recipients=verdict.bounced_recipients,
        original_message_ids=verdict.original_message_ids,
    )


def reply_text(msg: InboundMessage) -> str:
    """The visible text of a reply: quoted history and signature removed."""
    if not msg.has_plain and msg.html:
        return visible_text(html_to_text(cut_html_quote(msg.html)))
    return visible_text(msg.text)


def make_worker(app: App, rules: RulesHolder | None = None) -> Worker:
    """A worker with every hook this installation has (rules, agents' mail, outbound mail).

    Without ``rules`` the rules folder is loaded now; broken rules raise RulesError.
    """
    holder = (
        rules
        if rules is not None
        else RulesHolder.open(app.config.rules_dir, app.config.templates_dir)
    )
    from maild.agents.desk import AgentDesk

    desk = AgentDesk(app, holder)
    return Worker(app, hooks=default_hooks(app, holder, desk), agents=desk)


def default_hooks(app: App, rules: RulesHolder, agents: AgentDesk | None = None) -> list[Hook]:
    """Rules first (they may mark spam or reply), then SLA policy and due times, then agents'
    mail and the notifications to agents (after the rules, so an agent's command wins), then
    automatic mail and bounces."""
    from maild.agents.desk import AgentDesk
    from maild.notify.auto import AutoMail
    from maild.notify.templates import Renderer
    from maild.routing.apply import RulesHook
    from maild.sla.hook import SlaHook

    renderer = Renderer(app.config.templates_dir)
    desk = agents if agents is not None else AgentDesk(app, rules, renderer)
    return [RulesHook(app, rules, renderer), SlaHook(app, rules), desk, AutoMail(app, renderer)]
