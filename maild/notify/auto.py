"""The automatic-mail stage: acknowledge new tickets, and act on bounces of our own mail.

Runs inside the worker's transaction, so the acknowledgement is queued atomically with the ticket
(unless ``notify.acknowledge`` is off).
Every decision not to send is recorded on the ticket with its reason. Composing runs in a
savepoint (:mod:`maild.notify.queue`): if it fails in a way nobody foresaw, the ticket and the customer's message are still
stored (with a ``mail_error`` event) instead of the whole message going to quarantine.

A bounce (DSN) that threads to a ticket is recorded there as a ``bounce`` event, and the failed
recipients we had written to on that ticket get no automatic mail for
``loop.bounce_suppress_days``. Only those, and only when the DSN quotes one of our signed
Message-IDs of that ticket: a forged DSN cannot silence a stranger, nor, with the ticket's tag in
its subject, the ticket's own customer. A delay warning
(every DSN action ``delayed``) is recorded but suppresses nothing: the mail may still arrive.
"""

from __future__ import annotations

import json

from maild.agents.relations import resolve_merged
from maild.app import App
from maild.notify.compose import queue_mail
from maild.notify.loop import refusal, suppress
from maild.notify.queue import in_savepoint
from maild.notify.templates import Renderer
from maild.pipeline.addresses import Signer
from maild.pipeline.message import Address
from maild.pipeline.participants import counts_for
from maild.stage import Outcome, Stored
from maild.store import tickets as store
from maild.store.models import Message, Ticket

DELAY_ONLY = "delivery-status: delayed"


class AutoMail:
    """The stage that sends acknowledgements and records bounces."""

    def __init__(self, app: App, renderer: Renderer | None = None) -> None:
        self.app = app
        self.renderer = renderer or Renderer(app.config.templates_dir)

    def __call__(self, ctx: Stored) -> Outcome:
        words: tuple[str, ...] = ()
        if ctx.verdict.kind == "bounce" and ctx.verdict.bounced_recipients:
            words += self._bounce(ctx)
        if ctx.event != "new_ticket" or ctx.ticket.spam or ctx.replied:
            return Outcome(words)
        if not self.app.config.notify.acknowledge:
            return Outcome(words)
        return Outcome((*words, self._acknowledge(ctx)))

    def _bounce(self, ctx: Stored) -> tuple[str, ...]:
        app, ticket, now = self.app, ctx.ticket, ctx.message.created_at
        failed = list(ctx.verdict.bounced_recipients)
        delay_only = DELAY_ONLY in ctx.verdict.reasons
        ours = mailed_addresses(ticket)
        days = app.config.loop.bounce_suppress_days
        done: list[str] = []
        # Only a DSN that quotes one of our signed Message-IDs of this ticket proves it concerns
        # our mail; anyone can write a "bounce" with the ticket's tag in its subject.
        signer = Signer(app.config.prefix, app.secret)
        signed = [signer.ticket_from_message_id(mid) for mid in ctx.verdict.original_message_ids]
        verified = counts_for(signed, ticket.id, resolve_merged)  # a merged ticket's mail too
        if not delay_only and verified:
            done = suppress(
                [a for a in failed if a.lower() in ours],
                days=days,
                now=now,
                reason=f"bounce on {app.config.prefix}-{ticket.id}",
            )
        store.add_event(
            ticket,
            "bounce",
            actor="system",
            at=now,
            message=ctx.message,
            recipients=failed,
            suppressed=done,
            suppressed_days=days if done else 0,
            delayed=delay_only,
            **({} if verified else {"unverified": "it quotes none of our Message-IDs"}),
        )
        return ("bounce recorded",)

    def _acknowledge(self, ctx: Stored) -> str:
        app, ticket, now = self.app, ctx.ticket, ctx.message.created_at
        requester = ticket.requester
        why = ctx.no_auto_mail or refusal(
            requester.email, support=app.config.support_addresses, config=app.config.loop, now=now
        )
        if why:
            store.add_event(
                ticket,
                "auto_reply_suppressed",
                actor="system",
                at=now,
                message=ctx.message,
                to=requester.email,
                reason=why,
            )
            return f"no ack: {why}"
        error = in_savepoint(
            app,
            ticket,
            lambda: queue_mail(
                app,
                self.renderer,
                ticket,
                template="ack",
                to=[Address(requester.email, requester.name)],
                now=now,
                kind="auto",
                automatic=True,
                answering=ctx.message,
            ),
            template="ack",
            actor="system",
            at=now,
            cause=ctx.message,
        )
        return "ack queued" if error is None else f"no ack: {error}"


def mailed_addresses(ticket: Ticket) -> set[str]:
    """Every address we sent mail to on ``ticket`` (lower-cased)."""
    found: set[str] = set()
    rows = Message.select(Message.to_addrs, Message.cc_addrs).where(
        (Message.ticket == ticket) & (Message.direction == "out")
    )
    for row in rows:
        for column in (row.to_addrs, row.cc_addrs):
            found.update(a.lower() for a in json.loads(column or "[]"))
    return found
