"""What ``tickets set`` and ``tickets merge`` do: an admin's changes, from the command line.

The options are validated exactly like an agent's commands by mail (they are turned into the
same command lines and parsed against the rules files in force), so a bad team, agent, status or
field value is refused with the same words and nothing changes. Everything runs in one
transaction; every change is an audit event whose actor is the admin's login name (``getpass``),
and the detail says ``via: cli``. An admin may do anything (role ``admin``), so no role check.
"""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

from maild.app import App
from maild.errors import NotFoundError, TicketdError


class AdminError(Exception):
    def __init__(self, message: str, code: int = 65) -> None:
        super().__init__(message)
        self.code = code


def admin_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "admin"


def _rules(app: App) -> Any:
    from maild.routing.loader import RulesError
    from maild.routing.reload import RulesHolder

    try:
        return RulesHolder.open(app.config.rules_dir, app.config.templates_dir).rules
    except RulesError as exc:
        raise AdminError(f"the rules files are broken, fix them first: {exc}", 78) from None


def _ticket(app: App, ref: str) -> Any:
    from maild.store.tickets import find_ticket

    try:
        return find_ticket(ref, app.config.prefix)
    except NotFoundError as exc:
        raise AdminError(str(exc), 66) from None


def set_fields(
    app: App,
    ref: str,
    *,
    status: str | None,
    priority: str | None,
    team: str | None,
    assign: str | None,
    fields: list[str],
    tags: list[str],
) -> list[str]:
    """Apply the changes to ``ref``; one line per change made."""
    from maild.agents.commands import parse_commands
    from maild.sla import lifecycle
    from maild.store import custom_fields
    from maild.store import tickets as store
    from maild.store.db import write_tx
    from maild.store.models import TicketTag

    rules = _rules(app)
    lines = [
        f"#{name} {value}"
        for name, value in (("status", status), ("priority", priority), ("team", team))
        if value
    ]
    unassign = assign is not None and assign.strip().lower() == "none"
    if assign and not unassign:
        lines.append(f"#assign {assign}")
    if tags:
        lines.append("#tag " + " ".join(tags))
    if fields:
        lines.append("#set " + " ".join(fields))
    commands = parse_commands("\n".join(lines), rules=rules, author="", prefix=app.config.prefix)
    if commands.errors:
        raise AdminError("; ".join(f"{e.text}: {e.reason}" for e in commands.errors))
    actor, now = admin_name(), app.clock.now()
    done: list[str] = []
    with write_tx(app.db):
        # Locked (PostgreSQL): a reply committing meanwhile is applied before or after, never
        # undone by this transaction's copy of the ticket.
        ticket = store.locked_ticket(app.db, _ticket(app, ref).id)
        prefix = f"{app.config.prefix}-{ticket.id}"
        for tag in store.add_tags(ticket, commands.tags_add):
            store.add_event(ticket, "tag_added", actor=actor, at=now, tag=tag, via="cli")
            done.append(f"{prefix}: tag +{tag}")
        for tag in commands.tags_remove:
            gone = (
                TicketTag.delete()
                .where((TicketTag.ticket == ticket) & (TicketTag.tag == tag))
                .execute()
            )
            if gone:
                store.add_event(ticket, "tag_removed", actor=actor, at=now, tag=tag, via="cli")
                done.append(f"{prefix}: tag -{tag}")
        changes: list[tuple[str, Any]] = [
            ("team", commands.team),
            ("assignee", None if unassign else commands.assign),
            ("priority", commands.priority),
        ]
        for field, value in changes:
            if value is not None and lifecycle.apply_change(
                app, rules, ticket, field, value, actor=actor, at=now, via="cli"
            ):
                done.append(f"{prefix}: {field} {value}")
        if unassign and lifecycle.apply_change(
            app, rules, ticket, "assignee", None, actor=actor, at=now, via="cli"
        ):
            done.append(f"{prefix}: assignee none")
        for name, value in commands.fields:
            if custom_fields.set_value(ticket, name, value, actor=actor, at=now, via="cli"):
                done.append(f"{prefix}: {name}={value}")
        if commands.status is not None:
            if lifecycle.set_status(
                app, rules, ticket, commands.status, actor=actor, at=now, reason="tickets set"
            ):
                done.append(f"{prefix}: status {commands.status}")
            sub = rules.statuses.get(commands.substatus or "")
            custom_fields.set_substatus(ticket, sub.name if sub else None, sub.label if sub else "")
            if sub is not None:
                done.append(f"{prefix}: status {sub.name} ({sub.base})")
    return done


def merge_ticket(app: App, ref: str, into: str, *, at: dt.datetime | None = None) -> str:
    """Merge ``ref`` into ``into`` as the agents' ``#merge`` does (customer told by template)."""
    from maild.agents.relations import merge_problem
    from maild.agents.reply import merge_into
    from maild.notify.templates import Renderer
    from maild.store import tickets as store
    from maild.store.db import write_tx

    rules = _rules(app)
    actor, now = admin_name(), at or app.clock.now()
    outcome: list[str] = []
    with write_tx(app.db):
        source = _ticket(app, ref)
        try:
            target = _ticket(app, into)
        except AdminError:
            target = None
        from maild.agents.commands import ticket_number

        number = target.id if target is not None else ticket_number(into, app.config.prefix)
        why = merge_problem(source, number, app.config.prefix)
        if why is not None or target is None:
            raise AdminError(f"cannot merge {ref} into {into}: {why or 'no such ticket'}")
        # Both rows locked, in id order (no deadlock with a merge the other way round): mail
        # that the worker stores meanwhile lands before the move, or after on the target.
        first, second = sorted((source.id, target.id))
        locked = {n: store.locked_ticket(app.db, n) for n in (first, second)}
        source, target = locked[source.id], locked[target.id]
        merge_into(
            app,
            Renderer(app.config.templates_dir),
            rules,
            source,
            target,
            actor=actor,
            at=now,
            message=None,
            outcome=outcome,
        )
    prefix = app.config.prefix
    return f"{prefix}-{source.id} merged into {prefix}-{target.id} ({'; '.join(outcome)})"


__all__ = ["AdminError", "TicketdError", "merge_ticket", "set_fields"]
