"""The automatic-mail hook: acknowledge new tickets, and act on bounces of our own mail.

Runs inside the worker's transaction, so the acknowledgement is queued atomically with the ticket.
Every decision not to send is recorded on the ticket with its reason.
"""

from __future__ import annotations

from maild.app import App
from maild.notify.compose import queue_mail
from maild.notify.loop import refusal, suppress
from maild.notify.templates import Renderer
from maild.pipeline.message import Address
from maild.store import tickets as store


class AutoMail:
    def __init__(self, app: App, renderer: Renderer | None = None) -> None:
        self.app = app
        self.renderer = renderer or Renderer(app.config.templates_dir)

    def __call__(self, ctx) -> None:  # ctx: maild.worker.StoreContext
        app, ticket, now = self.app, ctx.ticket, ctx.message.created_at
        if ctx.verdict.kind == "bounce" and ctx.verdict.bounced_recipients:
            days = app.config.loop.bounce_suppress_days
            done = suppress(
                ctx.verdict.bounced_recipients,
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
                recipients=done,
                suppressed_days=days,
            )
            ctx.outcome.append("bounce recorded")
        if ctx.event != "new_ticket" or ticket.spam:
            return
        requester = ticket.requester
        why = refusal(
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
            ctx.outcome.append(f"no ack: {why}")
            return
        queue_mail(
            app,
            self.renderer,
            ticket,
            template="ack",
            to=[Address(requester.email, requester.name)],
            now=now,
            kind="auto",
            automatic=True,
            answering=ctx.message,
        )
        ctx.outcome.append("ack queued")
