"""An agent's mail as the worker stores it: whose it is, whether trusted, and its commands.

A value, built by :meth:`maild.agents.desk.AgentDesk.read` before the message is stored and
carried to the stages in :class:`maild.stage.Stored`.
"""

from __future__ import annotations

from dataclasses import dataclass

from maild.agents import trust
from maild.agents.commands import Commands
from maild.routing.engine import RuleSet
from maild.routing.schema import Agent


@dataclass(frozen=True)
class AgentMail:
    """A mail whose From is an agent's: the trust verdict and, when trusted, its commands."""

    agent: Agent
    verdict: trust.Verdict
    rules: RuleSet
    commands: Commands | None = None  # None when not trusted: no command runs
    text: str = ""  # the visible text, commands included
    mentioned: tuple[str, ...] = ()  # agents an internal note calls in with @name

    @property
    def trusted(self) -> bool:
        return self.verdict.trusted

    @property
    def public(self) -> bool:
        """Whether the mail answers the customer (trusted, valid, not a note, has text)."""
        c = self.commands
        return self.trusted and c is not None and not c.errors and not c.note and bool(c.body)

    @property
    def event(self) -> str:
        return "agent_reply" if self.public else "agent_note"

    @property
    def kind(self) -> str:
        return "agent" if self.public else "note"

    @property
    def body(self) -> str:
        """What is stored as the message's visible text (and sent, for a public reply)."""
        c = self.commands
        if c is None:
            return self.text
        return self.text if c.errors else c.body
