"""Choosing an agent for a ticket: a named agent, or the team's strategy.

Policy:
- ``round_robin``: the available members, in the order the agents are declared, take turns. The
  last agent chosen is kept in ``KeyValue`` (key ``assign.round_robin.<team>``), so the rotation
  carries on after a restart; if that agent has left the team (or is away), the turn goes to the
  member who followed them, who now holds their position. On PostgreSQL the row is locked
  (``FOR UPDATE``) so two instances never hand out the same turn; SQLite's write transaction
  already serialises writers.
- ``least_open``: the available member with the fewest tickets in new, open or pending; ties go to
  the member declared first.
- ``none``, an unknown team, or a team without available members: nobody.

These functions run inside the worker's write transaction and never open one of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from peewee import Database, fn

from maild.routing.engine import RuleSet
from maild.routing.schema import OPEN_STATUSES, TEAM, Agent
from maild.store.db import is_sqlite
from maild.store.models import KeyValue, Ticket


@dataclass(frozen=True)
class Assignment:
    """Who gets the ticket (None: nobody) and why, for the audit trail."""

    agent: str | None  # an agent's email
    strategy: str  # explicit | round_robin | least_open | none
    team: str | None
    reason: str


def resolve_assignee(
    db: Database, rules: RuleSet, *, assignee: str, team: str | None
) -> Assignment:
    """The agent for a decision's ``assignee``: an agent's email as is, or TEAM's strategy."""
    if assignee != TEAM:
        return Assignment(assignee, "explicit", team, f"assigned to {assignee} by rule")
    if team is None:
        return Assignment(None, "none", None, "assignee: team, but the ticket has no team")
    return assign_by_team(db, rules, team)


def assign_by_team(db: Database, rules: RuleSet, team: str) -> Assignment:
    """Apply ``team``'s strategy."""
    spec = rules.teams.get(team)
    if spec is None:
        return Assignment(None, "none", team, f"team {team!r} is not in the rules")
    members = rules.team_members(team, available_only=True)
    if spec.assign == "none":
        return Assignment(None, "none", team, f"team {team} assigns nobody (assign: none)")
    if not members:
        return Assignment(None, spec.assign, team, f"team {team} has no available members")
    if spec.assign == "round_robin":
        return round_robin(db, team, members)
    return least_open(team, members)


def round_robin(db: Database, team: str, members: tuple[Agent, ...]) -> Assignment:
    """The member after the one chosen last time, remembered in KeyValue."""
    key = f"assign.round_robin.{team}"
    KeyValue.insert(key=key, value="{}").on_conflict_ignore().execute()
    query = KeyValue.select().where(KeyValue.key == key)
    if not is_sqlite(db):
        query = query.for_update()
    row = query.get()
    try:
        state = json.loads(row.value)
    except ValueError:
        state = {}
    if not isinstance(state, dict):
        state = {}
    emails = [a.email for a in members]
    last = state.get("last")
    previous = state.get("position")
    if last in emails:
        position = emails.index(last) + 1
    elif isinstance(previous, int) and not isinstance(previous, bool):
        # The last agent left the team (or went away): whoever followed them now holds their
        # position, so the turn passes to them.
        position = previous
    else:
        position = 0
    position %= len(emails)
    chosen = emails[position]
    KeyValue.update(value=json.dumps({"last": chosen, "position": position})).where(
        KeyValue.key == key
    ).execute()
    return Assignment(
        chosen,
        "round_robin",
        team,
        f"round robin in team {team}: {chosen} ({position + 1} of {len(emails)})",
    )


def least_open(team: str, members: tuple[Agent, ...]) -> Assignment:
    """The member with the fewest open tickets (new, open, pending)."""
    emails = [a.email for a in members]
    counts = dict.fromkeys(emails, 0)
    query = (
        Ticket.select(Ticket.assignee, fn.COUNT(Ticket.id).alias("n"))
        .where(Ticket.assignee.in_(emails), Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.assignee)
    )
    rows = cast("list[tuple[str, int]]", list(query.tuples()))
    for assignee, count in rows:
        counts[assignee] = int(count)
    chosen = min(emails, key=lambda e: counts[e])  # min keeps the first of equals
    loads = ", ".join(f"{e} {n}" for e, n in counts.items())
    return Assignment(
        chosen, "least_open", team, f"least open in team {team}: {chosen} (open tickets: {loads})"
    )
