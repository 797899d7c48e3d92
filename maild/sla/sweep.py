"""The SLA and lifecycle sweep: escalations, pending reminders, auto-resolve and auto-close.

``ticketd run`` sweeps every minute (``schedule_jobs``); ``ticketd sla check --at TIME`` sweeps
once as if the clock read TIME. Everything is computed from stored times (creation, pauses,
resolution), never from ticks, so a missed sweep is caught up by the next one, which does what
became due in between, in order.

Exactly once: each action inserts its key (ticket, policy, step) into ``sla_firing`` in the same
transaction that acts, after locking the ticket row (``FOR UPDATE`` on PostgreSQL; SQLite
transactions take the write lock up front). A second process that reaches the same step waits for
the first to commit, finds the key and does nothing; if the first rolls back, the second acts.
Each action is an audit event (``escalation``, ``pending_reminder``; status changes by actor
``system``).

Escalation steps fire while the ticket is new or open and their target is unmet; a step whose
``then`` changes the priority (and with it the policy) lets the new policy's steps fire in the same
sweep. A pending ticket gets one reminder per pending stretch and is resolved once it has waited
``pending_resolve_days`` (the reminder is skipped then); a resolved ticket closes
``auto_close_days`` after its resolution. First of all, an open ticket without a policy (made
before the policies or the worker's SLA hook existed) gets one and its due times.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import schedule

from maild.app import App
from maild.clock import iso
from maild.jobs.runner import Jobs
from maild.notify.templates import Renderer
from maild.routing.assign import resolve_assignee
from maild.routing.engine import RuleSet
from maild.routing.reload import RulesHolder
from maild.routing.schema import TEAM, EscalationStep, SlaPolicy
from maild.sla import due, lifecycle
from maild.sla.hours import Span
from maild.sla.mail import to_customer, to_targets
from maild.store import tickets as store
from maild.store.db import connection, is_locked, is_sqlite, write_tx
from maild.store.models import SlaFiring, SlaPause, Ticket

log = logging.getLogger("ticketd.sla")
LIFECYCLE = "lifecycle"  # the ``policy`` of lifecycle actions in sla_firing
SYSTEM = "system"
MAX_PASSES = 5  # a pass that fires steps changing the policy is followed by another


@dataclass(frozen=True)
class Due:
    """One action that is due: its key in ``sla_firing`` and the function that does it."""

    ticket_id: int
    policy: str
    step: str
    at: dt.datetime  # when it became due
    act: Callable[[Ticket], str]
    still_due: Callable[[Ticket], bool]


class Sweep:
    """One sweep at ``now`` with one rule set; ``run()`` returns what it did, one line each."""

    def __init__(
        self, app: App, rules: RuleSet, now: dt.datetime, renderer: Renderer | None = None
    ) -> None:
        self.app, self.rules, self.now = app, rules, now
        self.renderer = renderer or Renderer(app.config.templates_dir)
        self.prefix = app.config.prefix
        self.errors: list[str] = []  # actions that raised; rolled back, tried again next sweep

    def run(self) -> list[str]:
        done = self.adopt()
        for _ in range(MAX_PASSES):
            found = sorted(
                [*self.escalations(), *self.pending(), *self.closing()],
                key=lambda d: (d.at, d.ticket_id),
            )
            fired = [line for line in map(self.fire_safely, found) if line]
            done.extend(fired)
            if not fired:
                break
        return done

    def adopt(self) -> list[str]:
        """Give a policy to open tickets that have none: made before the SLA policies (or the
        hook) existed, or before a reload added a policy that fits them."""
        if not self.rules.sla_policies:
            return []
        done: list[str] = []
        orphans = Ticket.select().where(
            Ticket.status.in_((*due.ACTIVE, "pending"))
            & (Ticket.spam == False)  # noqa: E712
            & Ticket.sla_policy.is_null()
        )
        for orphan in orphans:
            if due.choose_policy(self.rules, orphan, self.now) is None:
                continue
            with write_tx(self.app.db):
                ticket = self._locked(orphan.id)
                if ticket is None or ticket.sla_policy is not None:
                    continue
                if due.recompute(ticket, self.rules, self.now) and ticket.sla_policy:
                    done.append(f"{self.prefix}-{ticket.id}: sla policy {ticket.sla_policy}")
        return done

    # -- finding what is due ------------------------------------------------------------------

    def escalations(self) -> list[Due]:
        if not self.rules.sla_policies:
            return []
        out: list[Due] = []
        is_active = (
            Ticket.status.in_(due.ACTIVE)
            & (Ticket.spam == False)  # noqa: E712 - peewee builds SQL from ==
            & Ticket.sla_policy.is_null(False)
        )
        fired = {
            (row.ticket_id, row.policy, row.step)
            for row in SlaFiring.select(SlaFiring.ticket, SlaFiring.policy, SlaFiring.step)
            .join(Ticket)
            .where(is_active)
        }
        for ticket in Ticket.select().where(is_active):
            policy = self.rules.sla_policy(ticket.sla_policy)
            if policy is None or not policy.escalate:
                continue
            pauses: list[Span] | None = None
            for index, step in enumerate(policy.escalate):
                key = due.step_key(policy, index)
                if (ticket.id, policy.name, key) in fired or met(ticket, step):
                    continue
                if pauses is None:
                    pauses = due.pauses_of(ticket, self.now)
                at = due.step_due(self.rules, policy, step, ticket, pauses)
                if at is not None and at <= self.now:
                    out.append(self._escalation(ticket.id, policy, step, key, at))
        return out

    def pending(self) -> list[Due]:
        cfg = self.app.config.lifecycle
        if not cfg.pending_reminder_days and not cfg.pending_resolve_days:
            return []
        out: list[Due] = []
        rows = (
            SlaPause.select(SlaPause, Ticket)
            .join(Ticket)
            .where(
                SlaPause.ended_at.is_null()
                & (SlaPause.status == "pending")
                & (Ticket.status == "pending")
            )
        )
        for pause in rows:
            waited = self.now - pause.started_at
            resolve = dt.timedelta(days=cfg.pending_resolve_days)
            remind = dt.timedelta(days=cfg.pending_reminder_days)
            if cfg.pending_resolve_days and waited >= resolve:
                out.append(self._auto_resolve(pause, pause.started_at + resolve))
            elif cfg.pending_reminder_days and waited >= remind:
                out.append(self._reminder(pause, pause.started_at + remind))
        return out

    def closing(self) -> list[Due]:
        days = self.app.config.lifecycle.auto_close_days
        if not days:
            return []
        cutoff = self.now - dt.timedelta(days=days)
        rows = Ticket.select().where(
            (Ticket.status == "resolved")
            & Ticket.resolved_at.is_null(False)
            & (Ticket.resolved_at <= cutoff)
        )
        return [self._auto_close(t, t.resolved_at, days) for t in rows if t.resolved_at]

    # -- the actions ----------------------------------------------------------------------------

    def _escalation(
        self, ticket_id: int, policy: SlaPolicy, step: EscalationStep, key: str, at: dt.datetime
    ) -> Due:
        def still_due(ticket: Ticket) -> bool:
            return (
                ticket.status in due.ACTIVE
                and ticket.sla_policy == policy.name
                and not met(ticket, step)
            )

        def act(ticket: Ticket) -> str:
            actor = f"sla:{policy.name}"
            changes = self._then(ticket, step, actor)
            target_due = (
                ticket.first_response_due
                if step.target == "first_response"
                else ticket.resolution_due
            )
            extra = {
                "escalation": {
                    "policy": policy.name,
                    "step": step.label,
                    "target": step.target,
                    "breach": step.breach,
                    "percent": round(step.fraction * 100),
                    "due": iso(target_due) or "",
                    "changes": changes,
                }
            }
            said = "no notification"
            if step.notify:
                said = to_targets(
                    self.app,
                    self.renderer,
                    self.rules,
                    ticket,
                    step.template,
                    step.notify,
                    at=self.now,
                    kind="escalation",
                    actor=actor,
                    extra=extra,
                )
            store.add_event(
                ticket,
                "escalation",
                actor=actor,
                at=self.now,
                policy=policy.name,
                step=key,
                due=iso(at),
                target=step.target,
                breach=step.breach,
                changes=changes,
                notified=said,
            )
            parts = [said, *changes]
            return f"escalation {key!r} (policy {policy.name}): {'; '.join(parts)}"

        return Due(ticket_id, policy.name, key, at, act, still_due)

    def _then(self, ticket: Ticket, step: EscalationStep, actor: str) -> list[str]:
        """Apply the step's ``then``; return the changes made, in words."""
        then, rules, now = step.then, self.rules, self.now
        changes: list[str] = []

        def change(field: str, value: object, **detail: Any) -> bool:
            done = lifecycle.apply_change(
                self.app, rules, ticket, field, value, actor=actor, at=now, **detail
            )
            if done:
                changes.append(f"{field} {value}")
            return done

        moved = then.team is not None and change("team", then.team)
        assignee = then.assignee
        if assignee is None and moved and then.team is not None:
            team = rules.teams.get(then.team)
            assignee = TEAM if team is not None and team.assign != "none" else None
        if assignee is not None:
            chosen = resolve_assignee(self.app.db, rules, assignee=assignee, team=ticket.team)
            if chosen.agent is not None:
                change("assignee", chosen.agent, strategy=chosen.strategy)
            else:
                store.add_event(ticket, "assign_skipped", actor=actor, at=now, reason=chosen.reason)
        if then.priority is not None:
            change("priority", then.priority)
        return changes

    def _reminder(self, pause: SlaPause, at: dt.datetime) -> Due:
        days = self.app.config.lifecycle

        def act(ticket: Ticket) -> str:
            resolve_at = (
                pause.started_at + dt.timedelta(days=days.pending_resolve_days)
                if days.pending_resolve_days
                else None
            )
            extra = {
                "reminder": {
                    "pending_since": iso(pause.started_at),
                    "resolve_at": iso(resolve_at) or "",
                    "days": _days(self.now - pause.started_at),
                }
            }
            said = to_customer(
                self.app,
                self.renderer,
                ticket,
                "pending_reminder",
                at=self.now,
                kind="reminder",
                actor=SYSTEM,
                extra=extra,
            )
            store.add_event(
                ticket,
                "pending_reminder",
                actor=SYSTEM,
                at=self.now,
                pending_since=iso(pause.started_at),
                result=said,
            )
            return f"pending reminder: {said}"

        return Due(
            pause.ticket_id,
            LIFECYCLE,
            f"pending_reminder:{pause.id}",
            at,
            act,
            lambda t: _still_pending(t, pause),
        )

    def _auto_resolve(self, pause: SlaPause, at: dt.datetime) -> Due:
        days = self.app.config.lifecycle.pending_resolve_days

        def act(ticket: Ticket) -> str:
            reason = f"pending for {days:g} days without an answer"
            lifecycle.set_status(
                self.app,
                self.rules,
                ticket,
                "resolved",
                actor=SYSTEM,
                at=self.now,
                reason=reason,
                renderer=self.renderer,
            )
            return f"resolved: {reason}"

        return Due(
            pause.ticket_id,
            LIFECYCLE,
            f"auto_resolve:{pause.id}",
            at,
            act,
            lambda t: _still_pending(t, pause),
        )

    def _auto_close(self, ticket: Ticket, resolved_at: dt.datetime, days: float) -> Due:

        def act(ticket: Ticket) -> str:
            reason = f"resolved for {days:g} days"
            lifecycle.set_status(
                self.app, self.rules, ticket, "closed", actor=SYSTEM, at=self.now, reason=reason
            )
            return f"closed: {reason}"

        return Due(
            ticket.id,
            LIFECYCLE,
            f"auto_close:{iso(resolved_at)}",
            resolved_at + dt.timedelta(days=days),
            act,
            lambda t: t.status == "resolved" and t.resolved_at == resolved_at,
        )

    # -- exactly once ---------------------------------------------------------------------------

    def fire_safely(self, item: Due) -> str | None:
        """:meth:`fire`, logging an error instead of raising so one ticket cannot stop the rest."""
        try:
            return self.fire(item)
        except Exception as exc:
            if is_locked(exc):
                raise  # not this ticket's fault: the whole sweep is retried (the jobs runner)
            line = (
                f"{self.prefix}-{item.ticket_id}: {item.step} failed: {type(exc).__name__}: {exc}"
            )
            log.exception("sla: %s", line)
            self.errors.append(line)
            return None

    def fire(self, item: Due) -> str | None:
        """Do ``item`` unless another sweep did it already; the line to print, or None."""
        with write_tx(self.app.db):
            ticket = self._locked(item.ticket_id)
            if ticket is None or not item.still_due(ticket):
                return None
            inserted = (
                SlaFiring.insert(
                    ticket=ticket, policy=item.policy, step=item.step, fired_at=self.now
                )
                .on_conflict_ignore()
                .as_rowcount()
                .execute()
            )
            if not inserted:
                return None
            said = item.act(ticket)
        line = f"{self.prefix}-{item.ticket_id}: {said}"
        log.info("sla: %s", line)
        return line

    def _locked(self, ticket_id: int) -> Ticket | None:
        """The ticket, read again and locked for this transaction (SQLite: already locked)."""
        query = Ticket.select().where(Ticket.id == ticket_id)
        if not is_sqlite(self.app.db):
            query = query.for_update()
        return query.first()


def met(ticket: Ticket, step: EscalationStep) -> bool:
    """Whether the step's target is already met (answered, or resolved)."""
    if step.target == "first_response":
        return ticket.first_response_at is not None
    return ticket.status in ("resolved", "closed")


def _still_pending(ticket: Ticket, pause: SlaPause) -> bool:
    current = due.open_pause(ticket)
    return ticket.status == "pending" and current is not None and current.id == pause.id


def _days(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 86400)


def sweep(
    app: App, rules: RuleSet, now: dt.datetime, renderer: Renderer | None = None
) -> list[str]:
    """Run one sweep at ``now``; return what it did, one line per action."""
    return Sweep(app, rules, now, renderer).run()


def schedule_jobs(app: App, holder: RulesHolder, jobs: Jobs) -> schedule.Job:
    """Register the sweep every ``lifecycle.sweep_seconds`` (60) on the daemon's job runner: it
    logs instead of raising, never overlaps itself (one jobs thread), and with several instances
    on one PostgreSQL one of them sweeps each turn (advisory lock; the unique firing keys would
    keep a step from firing twice anyway)."""
    renderer = Renderer(app.config.templates_dir)

    def run() -> None:
        with connection(app.db):
            sweep(app, holder.rules, app.clock.now(), renderer)

    return jobs.every(app.config.lifecycle.sweep_seconds, "sla_sweep", run, cluster_once=True)
