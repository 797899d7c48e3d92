"""Reading ``teams:`` and ``agents:``: who answers tickets, in which teams, with which role.

A mixin of the loader. Teams are read first (agents name them), then agents, then each team's
members are filled in from the agents, in the order the agents were declared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from maild.config import ADDRESS_RE
from maild.routing.conditions import Report, suggest
from maild.routing.policies import NAME_RE, line_of
from maild.routing.schema import ROLES, STRATEGIES, Agent, Team, Where

AGENT_KEYS = ("email", "name", "teams", "role", "available")
TEAM_KEYS = ("assign",)


class PeopleParsing:
    """The loader's part that reads teams and agents."""

    agents: dict[str, Agent]
    teams: dict[str, Team]

    if TYPE_CHECKING:  # provided by the loader
        error: Callable[..., None]

        def reporter(self, file: str, label: str | None) -> Report: ...

        def _keys(self, node: Any, known: Sequence[str], report: Report, path: str) -> bool: ...

    def _teams(self, section: Any) -> None:
        node = section.value
        if not isinstance(node, dict):
            self.error(
                section.file,
                line_of(section.parent, "teams"),
                "teams: expected a mapping of team name to {assign: ...}",
            )
            return
        for name, spec in node.items():
            report = self.reporter(section.file, f"team {name!r}")
            if not isinstance(name, str) or not NAME_RE.match(name):
                report(node, name, "a team name is letters, digits, '.', '_' or '-'")
                continue
            if name in self.teams:
                report(node, name, f"defined twice (first at {self.teams[name].where})")
                continue
            spec = {} if spec is None else spec
            if not isinstance(spec, dict):
                report(node, name, "expected {assign: round_robin | least_open | none}")
                continue
            self._keys(spec, TEAM_KEYS, report, "")
            assign = spec.get("assign", "none")
            if assign not in STRATEGIES:
                report(
                    spec,
                    "assign",
                    f"assign: {assign!r} is not a strategy" + suggest(str(assign), STRATEGIES),
                )
                assign = "none"
            self.teams[name] = Team(name, assign, (), Where(section.file, line_of(node, name)))

    def _agent(self, file: str, seq: Any, i: int, node: Any) -> None:
        label = f"agents[{i}]"
        report = self.reporter(file, label)
        if not isinstance(node, dict):
            report(seq, i, "expected {email: ..., name: ..., teams: [...]}")
            return
        self._keys(node, AGENT_KEYS, report, "")
        email = node.get("email")
        if not isinstance(email, str) or not ADDRESS_RE.match(email):
            report(
                node,
                "email" if "email" in node else None,
                f"email: {email!r} is not an address" if email else "email: required",
            )
            return
        email = email.lower()
        label = f"agent {email}"
        report = self.reporter(file, label)
        if email in self.agents:
            report(node, "email", f"defined twice (first at {self.agents[email].where})")
            return
        name = node.get("name", "")
        if not isinstance(name, str):
            report(node, "name", "name: expected text")
            name = ""
        teams = node.get("teams", [])
        if isinstance(teams, str):
            teams = [teams]
        if not isinstance(teams, list):
            report(node, "teams", "teams: expected a list of team names")
            teams = []
        for team in teams:
            if team not in self.teams:
                report(
                    node,
                    "teams",
                    f"teams: unknown team {team!r}" + suggest(str(team), sorted(self.teams)),
                )
        role = node.get("role", "agent")
        if role not in ROLES:
            report(node, "role", f"role: {role!r}" + suggest(str(role), ROLES))
        available = node.get("available", True)
        if not isinstance(available, bool):
            report(node, "available", "available: expected true or false")
            available = True
        self.agents[email] = Agent(
            email,
            name,
            tuple(t for t in teams if t in self.teams),
            str(role),
            available,
            Where(file, line_of(seq, i)),
        )

    def _members(self) -> None:
        for name, team in list(self.teams.items()):
            members = tuple(a.email for a in self.agents.values() if name in a.teams)
            self.teams[name] = Team(name, team.assign, members, team.where)

    def _agent_ref(self, value: Any) -> str | None:
        """An agent's email from its email or its (unique) name."""
        if not isinstance(value, str):
            return None
        key = value.strip().lower()
        if key in self.agents:
            return key
        named = [a.email for a in self.agents.values() if a.name.lower() == key]
        return named[0] if len(named) == 1 else None
