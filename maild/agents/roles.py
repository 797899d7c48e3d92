"""Who may do what: the role each agent command needs, and the team scope it applies in.

Roles come from the rules files only (``role: agent|lead|admin`` on an agent), never from mail,
so no mail can raise its author's role. Each command declares a :class:`Need` in COMMANDS, by
name; a command not listed needs what DEFAULT says. To add a command, add one line here::

    COMMANDS["merge"] = Need("lead")

Policy (one rule for every command):

- ``agent``: changes tickets of its own teams (a ticket with no team yet, or assigned to the
  agent, counts as its own); on other tickets it may only write notes (a public answer there is
  refused too); it may assign a ticket to itself only;
- ``lead``: what an agent may, and assigns to others, and the commands that need ``lead``
  (``#merge`` and the like), on tickets of its teams;
- ``admin``: anything, on any ticket.

:func:`refusals` checks a mail's commands before anything changes; each refusal names the role
that would have been allowed, and the caller treats it as an invalid command (``command_error``,
an audit event, the mail kept as a note).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from maild.routing.schema import ROLES, Agent

RANK = {role: i for i, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Need:
    """The least role a command needs, and whether it is bound to the agent's own teams."""

    role: str = "agent"
    scope: Literal["team", "any"] = "team"  # any: also on other teams' tickets


DEFAULT = Need("agent")
COMMANDS: dict[str, Need] = {
    "note": Need("agent", "any"),  # a note changes nothing: anyone may write one anywhere
    "reply": Need("agent"),  # the public answer a mail gives (not a written command)
    "status": Need("agent"),
    "close": Need("agent"),
    "priority": Need("agent"),
    "tag": Need("agent"),
    "cc": Need("agent"),
    "team": Need("agent"),
    "set": Need("agent"),
    "assign": Need("agent"),  # to oneself; to someone else it needs "lead" (ASSIGN_OTHERS)
    "merge": Need("lead"),
    "link": Need("agent"),
    "unlink": Need("agent"),
    "snooze": Need("agent"),
    "macro": Need("agent"),
}
ASSIGN_OTHERS = Need("lead")


@dataclass(frozen=True)
class Refusal:
    """A command the author may not give: which, and the role that may."""

    command: str
    needs: str
    reason: str


def need_of(command: str, *, assigns_other: bool = False) -> Need:
    if command == "assign" and assigns_other:
        return ASSIGN_OTHERS
    return COMMANDS.get(command, DEFAULT)


def own_ticket(agent: Agent, team: str | None, assignee: str | None) -> bool:
    """Whether the ticket is within the agent's teams (or has none yet, or is the agent's)."""
    return team is None or team in agent.teams or assignee == agent.email


def refusal(
    agent: Agent, command: str, *, team: str | None, assignee: str | None, assigns_other: bool
) -> Refusal | None:
    """Why ``agent`` may not give ``command`` on a ticket of ``team``; None when it may."""
    need = need_of(command, assigns_other=assigns_other)
    have = RANK.get(agent.role, 0)
    if have < RANK[need.role]:
        what = (
            "assigning to someone else" if command == "assign" and assigns_other else f"#{command}"
        )
        return Refusal(command, need.role, f"{what} needs role {need.role} (you are {agent.role})")
    if need.scope == "any" or agent.role == "admin" or own_ticket(agent, team, assignee):
        return None
    what = "answering the customer" if command == "reply" else f"#{command}"
    return Refusal(
        command,
        "admin",
        f"{what} on a ticket of team {team} needs a member of that team or role admin "
        f"(your teams: {', '.join(agent.teams) or 'none'}; #note works on any ticket)",
    )


def refusals(
    agent: Agent,
    commands: Iterable[tuple[str, str]],
    *,
    team: str | None,
    assignee: str | None,
) -> list[tuple[str, Refusal]]:
    """``(command, arg)`` pairs checked in order; the refused ones with the line's argument."""
    out = []
    for command, arg in commands:
        others = command == "assign" and arg.strip().lower() not in ("me", agent.email)
        if (
            command == "assign"
            and others
            and agent.name
            and arg.strip().lower() == agent.name.lower()
        ):
            others = False
        found = refusal(agent, command, team=team, assignee=assignee, assigns_other=others)
        if found is not None:
            out.append((arg, found))
    return out
