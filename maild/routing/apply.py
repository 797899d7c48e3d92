"""The rules stage: evaluate the rules for each stored message and apply the decision to its ticket.

Runs inside the worker's transaction, first of the stages (:mod:`maild.compose_stages`), so that the ticket, its routing and
the mail the rules ask for commit together or not at all. Each applied action is an audit event
whose actor is ``rule:NAME``. A message is evaluated against exactly one rule set: the holder's
``rules`` is read once per message, so a reload mid-message cannot mix two sets.

Spam (``spam: true``) is kept and closed, and gets no acknowledgement, reply, notification or
forward. A rule's ``reply`` goes to the requester under the same loop protection as the
acknowledgement and replaces it (the shipped rules send ``ack`` this way). Mail the rules ask for
is composed in a savepoint (:mod:`maild.notify.queue`): a failure is recorded on the ticket as
``mail_error`` and the rest of the decision still applies.
"""

from __future__ import annotations

import datetime as dt

from maild.app import App
from maild.notify.compose import queue_mail, queue_to_agents
from maild.notify.loop import refusal
from maild.notify.queue import in_savepoint
from maild.notify.recipients import resolve_targets
from maild.notify.templates import Renderer
from maild.pipeline.addresses import is_support_address
from maild.pipeline.message import Address
from maild.routing import given_fields
from maild.routing.assign import resolve_assignee
from maild.routing.engine import Decision, RuleSet
from maild.routing.reload import RulesHolder
from maild.sla.lifecycle import apply_change, set_status
from maild.stage import Outcome, Stored
from maild.store import custom_fields
from maild.store import tickets as store
from maild.store.models import OutboxEntry, TicketTag
from maild.triage.predict import TriageHolder


class RulesStage:
    """The stage that runs the rules for new tickets and replies."""

    def __init__(self, app: App, holder: RulesHolder, renderer: Renderer | None = None) -> None:
        self.app = app
        self.holder = holder
        self.renderer = renderer or Renderer(app.config.templates_dir)
        self.triage = TriageHolder(app.data_dir)  # asked only by rules that use predictions

    def __call__(self, stored: Stored) -> Outcome:
        if stored.event not in ("new_ticket", "customer_reply", "agent_reply"):
            return Outcome()
        rules = self.holder.rules
        view = None if stored.event == "new_ticket" else stored.ticket_before
        given = store_given(rules, stored) if stored.source in given_fields.TRUSTED_SOURCES else {}
        at = stored.message.created_at
        decision = rules.evaluate(
            stored.event,
            stored.msg,
            view,
            at,
            given=given,
            authserv_id=self.app.config.agents.authserv_id or "",
            triage=self.triage.predict,
        )
        store_extracted(decision, stored)
        if not decision.matched_rules:
            return Outcome()
        return apply_decision(self.app, self.renderer, rules, decision, stored)


def store_given(rules: RuleSet, ctx: Stored) -> dict[str, str]:
    """The custom field values the customer gave on the web form (or an API channel sent),
    checked again against the fields declared now and stored (actor: the sender); what no longer
    fits is named in a ``fields_refused`` event. Returns the stored values, for the rules."""
    given = given_fields.decode(ctx.msg.raw)
    if not given:
        return {}
    values, refused = given_fields.recheck(rules.fields, given)
    at = ctx.message.created_at
    for name, value in values.items():
        custom_fields.set_value(
            ctx.ticket, name, value, actor=ctx.actor, at=at, message=ctx.message, via=ctx.source
        )
    if refused:
        store.add_event(
            ctx.ticket,
            "fields_refused",
            actor="system",
            at=at,
            message=ctx.message,
            via=ctx.source,
            refused=refused,
        )
    return values


def store_extracted(decision: Decision, ctx: Stored) -> None:
    """Custom field values found in the message, for fields the ticket has no value for yet."""
    if not decision.extracted:
        return
    have = custom_fields.values_of(ctx.ticket)
    for name, value in decision.extracted:
        if name not in have:
            custom_fields.set_value(
                ctx.ticket,
                name,
                value,
                actor="extract",
                at=ctx.message.created_at,
                message=ctx.message,
            )


def apply_decision(
    app: App, renderer: Renderer, rules: RuleSet, decision: Decision, ctx: Stored
) -> Outcome:
    """Change the ticket as ``decision`` says, then queue the mail it asks for."""
    ticket, now, message = ctx.ticket, ctx.message.created_at, ctx.message
    store.add_event(
        ticket,
        "rules",
        actor="system",
        at=now,
        message=message,
        event=decision.event,
        matched=list(decision.matched_rules),
        **({"regex_timeouts": list(decision.regex_timeouts)} if decision.regex_timeouts else {}),
    )

    def set_(field: str, value: object, rule: str, **detail: object) -> None:
        # Through the lifecycle: due times follow priority and team; resolving stamps and surveys.
        apply_change(
            app,
            rules,
            ticket,
            field,
            value,
            actor=f"rule:{rule}",
            at=now,
            message=message,
            **detail,
        )

    if decision.team is not None:
        set_("team", decision.team.value, decision.team.rule)
    if decision.assignee is not None:
        chosen = resolve_assignee(app.db, rules, assignee=decision.assignee.value, team=ticket.team)
        if chosen.agent is not None:
            set_("assignee", chosen.agent, decision.assignee.rule, strategy=chosen.strategy)
        else:
            store.add_event(
                ticket,
                "assign_skipped",
                actor=f"rule:{decision.assignee.rule}",
                at=now,
                message=message,
                reason=chosen.reason,
            )
    if decision.priority is not None:
        set_("priority", decision.priority.value, decision.priority.rule)
    if decision.sla is not None:
        set_("sla_policy", decision.sla.value, decision.sla.rule)
    for applied in decision.fields:
        name, value = applied.value
        custom_fields.set_value(
            ticket, name, value, actor=f"rule:{applied.rule}", at=now, message=message
        )
    for tag in decision.tags_add:
        if TicketTag.insert(ticket=ticket, tag=tag.value).on_conflict_ignore().execute():
            store.add_event(
                ticket,
                "tag_added",
                actor=f"rule:{tag.rule}",
                at=now,
                message=message,
                tag=tag.value,
            )
    for tag in decision.tags_remove:
        removed = (
            TicketTag.delete()
            .where((TicketTag.ticket == ticket) & (TicketTag.tag == tag.value))
            .execute()
        )
        if removed:
            store.add_event(
                ticket,
                "tag_removed",
                actor=f"rule:{tag.rule}",
                at=now,
                message=message,
                tag=tag.value,
            )
    if decision.is_spam:
        assert decision.spam is not None
        set_("spam", True, decision.spam.rule)
        set_status(
            app,
            rules,
            ticket,
            "closed",
            actor=f"rule:{decision.spam.rule}",
            at=now,
            message=message,
            reason="spam",
            survey=False,
            renderer=renderer,
        )
        return Outcome((f"spam by rule {decision.spam.rule!r}",))
    if decision.status is not None:
        set_status(
            app,
            rules,
            ticket,
            decision.status.value,
            actor=f"rule:{decision.status.rule}",
            at=now,
            message=message,
            renderer=renderer,
        )
    words: list[str] = []
    replied = False
    for reply in decision.replies:
        if not ctx.verdict.is_robot:
            replied = True  # the rule's reply stands in for the acknowledgement, sent or not
            words += _reply(app, renderer, ctx, reply.value, reply.rule)
    for notify in decision.notifies:
        targets = resolve_targets(rules, ticket, notify.value.to, exclude=[ctx.actor])
        words += _send(
            app,
            renderer,
            ctx,
            notify.value.template,
            list(targets.to),
            notify.rule,
            kind="notify",
            unresolved=targets.unresolved,
        )
    for forward in decision.forwards:
        why = _forward_refusal(app, ctx, forward.value)
        if why:
            store.add_event(
                ticket,
                "forward_skipped",
                actor=f"rule:{forward.rule}",
                at=now,
                message=message,
                to=forward.value,
                reason=why,
            )
            words.append(f"no forward to {forward.value}: {why}")
            continue
        words += _send(
            app, renderer, ctx, "forward", [Address(forward.value)], forward.rule, kind="forward"
        )
    words.append(f"rules: {', '.join(decision.matched_rules)}")
    return Outcome(tuple(words), replied)


def _forward_refusal(app: App, ctx: Stored, address: str) -> str | None:
    """Why a rule's forward to ``address`` must not go out for this message, or None.

    Forwarding the mail of the forward address itself back to it (its help desk's or its
    responder's answer, threaded into the ticket as a customer reply) would ping-pong without
    end; mail to our own support addresses would only come back in. A ticket forwards at most
    ``loop.auto_replies_per_hour`` mails an hour, which also ends a loop through a third address.
    """
    if is_support_address(address, app.config.support_addresses):
        return "one of our own support addresses"
    if address.lower() == ctx.actor.lower():
        return "the message came from this address"
    limit = app.config.loop.auto_replies_per_hour
    since = ctx.message.created_at - dt.timedelta(hours=1)
    recent = (
        OutboxEntry.select()
        .where(
            (OutboxEntry.ticket == ctx.ticket)
            & (OutboxEntry.kind == "forward")
            & (OutboxEntry.created_at > since)
        )
        .count()
    )
    if recent >= limit:  # a loop through a third address (it answers from another one)
        return f"{recent} forwards of this ticket in the last hour (loop.auto_replies_per_hour)"
    return None


def _reply(app: App, renderer: Renderer, ctx: Stored, template: str, rule: str) -> tuple[str, ...]:
    """A rule's automatic reply to the requester, under the loop protection of acknowledgements
    (never to a robot's mail: the caller checks)."""
    ticket, now = ctx.ticket, ctx.message.created_at
    requester = ticket.requester
    why = ctx.no_auto_mail or refusal(
        requester.email, support=app.config.support_addresses, config=app.config.loop, now=now
    )
    if why:
        store.add_event(
            ticket,
            "auto_reply_suppressed",
            actor=f"rule:{rule}",
            at=now,
            message=ctx.message,
            to=requester.email,
            template=template,
            reason=why,
        )
        return (f"no {template}: {why}",)
    return _send(
        app,
        renderer,
        ctx,
        template,
        [Address(requester.email, requester.name)],
        rule,
        kind="auto",
        automatic=True,
    )


def _send(
    app: App,
    renderer: Renderer,
    ctx: Stored,
    template: str,
    to: list[Address],
    rule: str,
    *,
    kind: str,
    automatic: bool = False,
    unresolved: tuple[str, ...] = (),
) -> tuple[str, ...]:
    ticket, now = ctx.ticket, ctx.message.created_at
    if unresolved:
        store.add_event(
            ticket,
            "notify_skipped",
            actor=f"rule:{rule}",
            at=now,
            message=ctx.message,
            template=template,
            reasons=list(unresolved),
        )
    if not to:
        return ()

    def queue() -> object:
        compose = queue_mail if kind == "auto" else queue_to_agents
        return compose(
            app,
            renderer,
            ticket,
            template=template,
            to=to,
            now=now,
            kind=kind,
            automatic=automatic,
            answering=ctx.message,
            actor=f"rule:{rule}",
        )

    error = in_savepoint(
        app, ticket, queue, template=template, actor=f"rule:{rule}", at=now, cause=ctx.message
    )
    return (f"{template} queued",) if error is None else (f"no {template}: {error}",)
