"""Who a notification goes to: rule and escalation targets resolved to agents' addresses.

A target is ``team`` (every member of the ticket's team), ``assignee`` (the ticket's assignee),
an agent's email or name, or any other address. The result is de-duplicated, keeps the order the
targets were written in, and names what could not be resolved (no team, nobody assigned) so the
caller can record it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from maild.pipeline.message import Address
from maild.routing.engine import RuleSet
from maild.routing.schema import ASSIGNEE, TEAM
from maild.store.models import Ticket


@dataclass(frozen=True)
class Recipients:
    to: tuple[Address, ...]
    unresolved: tuple[str, ...]  # e.g. "assignee: nobody is assigned"


def resolve_targets(
    rules: RuleSet, ticket: Ticket, targets: Iterable[str], *, exclude: Iterable[str] = ()
) -> Recipients:
    """The addresses for ``targets`` on ``ticket``, without ``exclude`` (e.g. the author)."""
    seen = {e.lower() for e in exclude}
    out: list[Address] = []
    missing: list[str] = []

    def add(email: str, name: str = "") -> None:
        key = email.lower()
        if key not in seen:
            seen.add(key)
            out.append(Address(key, name))

    for target in targets:
        if target == TEAM:
            if not ticket.team:
                missing.append("team: the ticket has no team")
                continue
            members = rules.team_members(ticket.team, available_only=True)
            if not members:
                missing.append(f"team: {ticket.team} has no available members")
            for agent in members:
                add(agent.email, agent.name)
        elif target == ASSIGNEE:
            if not ticket.assignee:
                missing.append("assignee: nobody is assigned")
                continue
            known = rules.agent(ticket.assignee)
            add(ticket.assignee, known.name if known else "")
        else:
            named = rules.agent(target)
            if named is not None:
                add(named.email, named.name)
            elif "@" in target:
                add(target)
            else:
                missing.append(f"{target}: no such agent")
    return Recipients(tuple(out), tuple(missing))
