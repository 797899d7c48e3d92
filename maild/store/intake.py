"""Storing one inbound message: de-duplicate, thread, and write it to its ticket.

:func:`store_message` runs inside the worker's transaction and returns either the frozen
:class:`maild.stage.Stored` that the stages after threading see, or, when nothing was stored (a
duplicate, a robot's mail that concerns no ticket), the words for the spool row's result.

Who the sender is on the ticket decides how the message is stored: a trusted agent's reply or
note (:mod:`maild.agents`, read through ``read_agent``), a stranger's mail kept as a note or
opening a linked ticket (:mod:`maild.pipeline.participants`), a rating answering our survey, a
reply to a closed ticket that starts a follow-up, or a customer's reply that re-opens a pending
or resolved ticket.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from maild.agents.mail import AgentMail
from maild.agents.relations import resolve_merged
from maild.app import App
from maild.kb.solved import is_solved_reply, mark_self_solved
from maild.pipeline import participants
from maild.pipeline.addresses import Signer, base_address, is_support_address
from maild.pipeline.authres import dmarc_fails, domain_of, our_results
from maild.pipeline.classify import Classification
from maild.pipeline.message import Address, InboundMessage
from maild.pipeline.reply import reply_text
from maild.pipeline.sentiment import message_sentiment
from maild.pipeline.thread import ThreadMatch, find_ticket, strip_reply_prefixes
from maild.routing.schema import TicketView
from maild.sla import lifecycle, survey
from maild.stage import Stored
from maild.store import origins
from maild.store import tickets as store
from maild.store.models import Message, SpoolEntry, Ticket, Watcher

ReadAgent = Callable[[InboundMessage, Address, Ticket], AgentMail | None]


@dataclass(frozen=True, slots=True)
class Intake:
    """What storing needs besides the message: the installation, its signer, and who tells an
    agent's mail from a customer's (None: everyone is a customer)."""

    app: App
    signer: Signer
    read_agent: ReadAgent | None = None


def store_message(
    intake: Intake,
    entry: SpoolEntry,
    msg: InboundMessage,
    verdict: Classification,
    sender: Address,
    now: dt.datetime,
) -> Stored | str:
    """Store ``msg`` on its ticket; return what the stages see, or why nothing was stored."""
    duplicate = Message.get_or_none(Message.dedup_key == msg.dedup_key)
    if duplicate is not None:
        return f"duplicate of {intake.app.config.prefix}-{duplicate.ticket_id}"
    match = thread(intake, msg, verdict)
    if match is None and verdict.kind in ("bounce", "autoreply"):
        return f"ignored: {verdict.kind} that concerns no ticket"
    return _store(intake, entry, msg, verdict, sender, match, now)


def thread(intake: Intake, msg: InboundMessage, verdict: Classification) -> ThreadMatch | None:
    """The ticket ``msg`` answers, if any (:func:`maild.pipeline.thread.find_ticket`)."""

    def ticket_of_message_id(message_id: str) -> int | None:
        row = (
            Message.select(Message.ticket)
            .where(Message.message_id == message_id)
            .order_by(Message.id)
            .first()
        )
        return row.ticket_id if row else None

    match = find_ticket(
        msg,
        signer=intake.signer,
        support=intake.app.config.support_addresses,
        exists=lambda n: Ticket.select().where(Ticket.id == n).exists(),
        ticket_of_message_id=ticket_of_message_id,
        extra_message_ids=verdict.original_message_ids,
    )
    return merged_target(match)


def merged_target(match: ThreadMatch | None) -> ThreadMatch | None:
    """Mail for a ticket merged into another (its reference, signed address or Message-IDs)
    goes to the ticket it was merged into."""
    if match is None:
        return None
    target = resolve_merged(match.number)
    return match if target == match.number else ThreadMatch(target, f"{match.how} (merged)")


def _store(
    intake: Intake,
    entry: SpoolEntry,
    msg: InboundMessage,
    verdict: Classification,
    sender: Address,
    match: ThreadMatch | None,
    now: dt.datetime,
) -> Stored:
    app = intake.app
    prefix = app.config.prefix
    robot = verdict.is_robot
    ticket = store.locked_ticket(app.db, match.number) if match else None
    author = None
    if ticket is not None and not robot and intake.read_agent is not None:
        author = intake.read_agent(msg, sender, ticket)
    agent = author if author is not None and author.trusted else None
    visible = reply_text(msg) if ticket is not None else ""  # quotes stripped, computed once
    # Who may act on the ticket (maild.pipeline.participants); None: an agent's From, a robot.
    standing = _standing(intake, msg, sender, ticket) if not robot and author is None else None
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
    before = None if ticket is None or robot else TicketView.from_ticket(ticket)
    if ticket is None:
        ticket = _new_ticket(app, msg, sender, now, parent)
    event = "robot" if robot else ("new_ticket" if created else "customer_reply")
    body = msg.text if created else visible
    kind = "robot" if robot else "customer"
    if agent is not None:  # a trusted agent's reply or note (maild.agents.desk)
        event, body, kind = agent.event, agent.body, agent.kind
    elif note:  # kept for the agents, flagged; it changes nothing on the ticket
        event, kind = "non_participant", participants.NON_PARTICIPANT_KIND
    message = _message_row(entry, msg, verdict, sender, ticket, kind=kind, body=body, now=now)
    refused = store.store_attachments(
        message,
        msg.attachments,
        root=app.data_dir / "attachments",
        max_bytes=app.config.attachments.max_bytes,
        max_count=app.config.attachments.max_count,
    )
    actor = sender.email
    if created:
        origins.record(ticket, entry, message)
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
        _add_watchers(app, msg, sender, ticket, created=created, now=now)
        if rating is not None:
            # The stages see it as event "satisfaction" (no rules, no SLA change).
            lifecycle.record_satisfaction(ticket, rating, actor=actor, at=now, message=message)
            event = "satisfaction"
        elif (
            not created
            and standing is not None
            and standing.why == "requester"
            and is_solved_reply(visible)
            and mark_self_solved(app, ticket, actor=actor, at=now, via="mail", message=message)
        ):
            pass  # "solved" answering our suggestions resolved it (maild.kb.solved)
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
    return Stored(
        app=app,
        msg=msg,
        verdict=verdict,
        ticket=ticket,
        message=message,
        event=event,
        actor=actor,
        source=entry.source,
        created=created,
        ticket_before=before,
        agent=author,
        no_auto_mail=no_auto_mail(app, msg, sender),
    )


def _message_row(
    entry: SpoolEntry,
    msg: InboundMessage,
    verdict: Classification,
    sender: Address,
    ticket: Ticket,
    *,
    kind: str,
    body: str,
    now: dt.datetime,
) -> Message:
    return Message.create(
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
        sentiment=message_sentiment(msg) if kind == "customer" else None,
    )


def _add_watchers(
    app: App,
    msg: InboundMessage,
    sender: Address,
    ticket: Ticket,
    *,
    created: bool,
    now: dt.datetime,
) -> None:
    """The customer's To/Cc (not our own addresses) become watchers of the ticket."""
    cc = [
        a
        for a in (*msg.to, *msg.cc)
        if not is_support_address(a.email, app.config.support_addresses) and a.email != sender.email
    ]
    # Only the ticket's own people add watchers: the subject tag alone threads a stranger's
    # mail here, and watchers get the agents' answers.
    known = (
        created
        or sender.email == ticket.requester.email
        or (ticket.watchers.where(Watcher.email == sender.email).exists())
    )
    added = store.add_watchers(ticket, cc) if known else []
    if added:
        store.add_event(ticket, "watchers", actor=sender.email, at=now, added=added)


def _standing(
    intake: Intake, msg: InboundMessage, sender: Address, ticket: Ticket | None
) -> participants.Standing | None:
    """The sender's standing on ``ticket`` (None for a new ticket)."""
    if ticket is None:
        return None
    support = intake.app.config.support_addresses
    return participants.standing(
        sender.email,
        requester=ticket.requester.email,
        watchers=[w.email for w in ticket.watchers],
        signed=participants.at_signed_address(
            msg.recipients, ticket.id, intake.signer, support, resolve_merged
        ),
        mode=intake.app.config.threading.non_participants,
    )


def no_auto_mail(app: App, msg: InboundMessage, sender: Address) -> str | None:
    """Why the sender must get no automatic mail: our MTA saw their domain fail DMARC, so the
    From is forged and answering it would spend the real owner's budget."""
    authserv = app.config.agents.authserv_id
    domain = domain_of(sender.email)
    if authserv and dmarc_fails(our_results(msg.headers, authserv), domain):
        return f"Authentication-Results {authserv}: dmarc=fail header.from={domain}"
    return spam_marked(msg, authserv or "", domain)


def spam_marked(msg: InboundMessage, authserv_id: str, domain: str) -> str | None:
    """Why a mail our MTA marked as spam gets no automatic mail (None when it is not)."""
    from maild.pipeline.spam import mta_verdict

    verdict = mta_verdict(msg.headers, authserv_id=authserv_id, domain=domain)
    if verdict.flag:
        score = f" (score {verdict.score:g})" if verdict.score is not None else ""
        return f"our MTA marked it as spam{score}"
    return None


def _new_ticket(
    app: App, msg: InboundMessage, sender: Address, now: dt.datetime, parent: Ticket | None
) -> Ticket:
    support = app.config.support_addresses
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
