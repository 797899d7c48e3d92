"""``@name`` mentions in an agent's internal note: who is called in, or why a mention is refused.

A mention is ``@`` at the start of a word followed by an agent's address (``@alice@example.com``)
or a name (``@alice``: the agent's name, case ignored, or the local part of exactly one agent's
address). An address inside text (``bob@example.com``) is no mention. Only agents can be
mentioned: an unknown name is an error and so is a customer's address, since a mention sends the
note, which the customer must never see. Pure: the caller notifies and adds the watchers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from maild.routing.schema import Agent

MAX_MENTIONS = 20
_MENTION = re.compile(r"(?<![\w.@+-])@([A-Za-z0-9][\w.+-]*(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?)")


@dataclass(frozen=True)
class Mentions:
    """The agents a note calls in (emails, in order of first mention) and the refused mentions."""

    agents: tuple[str, ...] = ()
    errors: tuple[tuple[int, str, str], ...] = ()  # (line, "@token", reason)


def find(text: str) -> list[tuple[int, str]]:
    """``(line number, token)`` of each mention in ``text``, without the ``@`` and trailing dots."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(">"):
            continue  # quoted history: someone else's words
        for match in _MENTION.finditer(line):
            out.append((number, match.group(1).rstrip(".")))
    return out


def resolve(text: str, agents: Mapping[str, Agent], *, author: str) -> Mentions:
    """The mentioned agents of a note, or why a mention cannot be served."""
    found: list[str] = []
    errors: list[tuple[int, str, str]] = []
    for number, token in find(text):
        key = token.lower()
        agent = agents.get(key) if "@" in key else _by_name(key, agents)
        if agent is None:
            if "@" in key:
                reason = f"{key} is not an agent: a mention sends the internal note, so it goes to agents only"
            else:
                known = ", ".join(sorted(a.name or a.email for a in agents.values())) or "none"
                reason = f"no agent is called {token!r} (agents: {known})"
            errors.append((number, f"@{token}", reason))
        elif agent.email != author and agent.email not in found:
            found.append(agent.email)
    if len(found) > MAX_MENTIONS:
        errors.append((0, "@", f"at most {MAX_MENTIONS} agents can be mentioned in one note"))
    return Mentions(tuple(found), tuple(errors))


def _by_name(key: str, agents: Mapping[str, Agent]) -> Agent | None:
    named = [a for a in agents.values() if a.name.lower() == key]
    if len(named) == 1:
        return named[0]
    local = [a for a in agents.values() if a.email.split("@", 1)[0] == key]
    return local[0] if len(local) == 1 else None
