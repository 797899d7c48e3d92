"""The stage contract: what a stage after threading sees, and what it gives back.

The worker (:mod:`maild.worker`) stores each message (:func:`maild.store.intake.store_message`),
then runs the stages that :mod:`maild.compose_stages` declares, in order, inside the message's
transaction. Each stage is a function of one frozen :class:`Stored` and returns a frozen
:class:`Outcome`; nothing is shared between stages but the database rows they change (through
the store, in that one transaction, so that the message and everything it causes commit
together or not at all) and what one outcome tells the next (:meth:`Stored.after`).

This module sits below the runner, the composition and every stage: it imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from maild.agents.mail import AgentMail
from maild.app import App
from maild.pipeline.classify import Classification
from maild.pipeline.message import InboundMessage
from maild.routing.schema import TicketView
from maild.store.models import Message, Ticket

# What a stored message is to the stages (the ``event`` of rules and notifications).
EVENTS = (
    "new_ticket",
    "customer_reply",
    "agent_reply",
    "agent_note",
    "robot",
    "satisfaction",
    "non_participant",
)


@dataclass(frozen=True, slots=True)
class Stored:
    """A message just stored on its ticket, inside the message's transaction."""

    app: App
    msg: InboundMessage
    verdict: Classification
    ticket: Ticket
    message: Message
    event: str  # one of EVENTS
    actor: str
    source: str = ""  # the spool row's source: smtp | imap | pipe | import | web | api
    created: bool = False  # the message opened its ticket
    ticket_before: TicketView | None = None  # the ticket as it was before this message
    agent: AgentMail | None = None  # the From is an agent's: trusted or a forgery (maild.agents)
    replied: bool = False  # an earlier stage already answered the requester (no ack then)
    no_auto_mail: str | None = None  # why the sender gets no automatic mail (their DMARC failed)

    def after(self, outcome: Outcome) -> Stored:
        """What the next stage sees once a stage returned ``outcome``."""
        if outcome.replied and not self.replied:
            return replace(self, replied=True)
        return self


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a stage did: the words for the log line, and whether it answered the requester."""

    words: tuple[str, ...] = ()
    replied: bool = False  # a rule's reply stands in for the acknowledgement, sent or not

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(self.words + other.words, self.replied or other.replied)


NOTHING = Outcome()

Stage = Callable[[Stored], Outcome]


def said(*words: str) -> Outcome:
    """An outcome of words only."""
    return Outcome(tuple(words))


def run_stages(stages: tuple[Stage, ...], stored: Stored) -> Outcome:
    """Run ``stages`` in order over ``stored``; return their outcomes added up."""
    total = NOTHING
    for stage in stages:
        outcome = stage(stored)
        stored = stored.after(outcome)
        total = total + outcome
    return total
