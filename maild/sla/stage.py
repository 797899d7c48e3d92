"""The stage that keeps SLA policy and due times current as mail arrives.

Runs after the rules stage (which may set priority, team, status or name a policy) inside the
message's transaction: it stops or restarts the clocks for a status the rules changed, chooses the
policy and stores the due times. A failure is recorded on the ticket (``sla_error``) and logged;
it never sends the customer's message to quarantine.
"""

from __future__ import annotations

import logging

from maild.app import App
from maild.routing.reload import RulesHolder
from maild.sla import due
from maild.stage import Outcome, Stored
from maild.store import tickets as store

log = logging.getLogger("ticketd.sla")
EVENTS = ("new_ticket", "customer_reply", "agent_reply")


class SlaStage:
    """The stage that sets the policy and due times on new tickets and recomputes them on
    replies."""

    def __init__(self, app: App, holder: RulesHolder) -> None:
        self.app = app
        self.holder = holder

    def __call__(self, stored: Stored) -> Outcome:
        if stored.event not in EVENTS or stored.ticket.spam:
            return Outcome()
        ticket, now = stored.ticket, stored.message.created_at
        try:
            with self.app.db.atomic():  # a savepoint inside the worker's transaction
                due.sync_pause(ticket, now)
                if due.recompute(ticket, self.holder.rules, now):
                    return Outcome((f"sla {ticket.sla_policy or 'none'}",))
        except Exception as exc:
            log.exception("SLA update for ticket #%s failed", ticket.id)
            store.add_event(
                ticket,
                "sla_error",
                actor=due.SLA_ACTOR,
                at=now,
                message=stored.message,
                error=f"{type(exc).__name__}: {str(exc)[:500]}",
            )
        return Outcome()
