"""Who may act on a ticket: its participants, and what becomes of mail from anyone else.

A ticket's participants are its requester, its watchers (added by an agent with ``#cc``, by a
rule, or from the original mail's To/Cc) and the agents. Addresses compare without case and
without a ``+tag`` (``Carol+work@Customer.test`` is ``carol@customer.test``). A mail sent to
the ticket's signed reply address counts as a participant's whoever sent it: only someone who
received our mail about the ticket knows that address.

Anyone else's mail that threads to the ticket (its subject tag is guessable, the numbers are
sequential) is handled by ``threading.non_participants``:

- ``note`` (default): stored on the ticket as a flagged message (Message kind ``outsider``);
  no re-open, no status change, no watchers, no rating; agents are told it came from a
  non-participant, and only while the ticket is not resolved or closed;
- ``new_ticket``: a new ticket for the sender, linked to the old one (like a follow-up);
- ``append``: an ordinary reply, as before this setting existed.

Also here: how a sender's display name is shown, so that ``"bob@example.com" <x@evil.test>``
never passes for bob. Everything is pure: addresses in, a decision out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from maild.pipeline.addresses import Signer, base_address

PARTICIPANT = "participant"
NOTE, NEW_TICKET, APPEND = "note", "new_ticket", "append"
MODES = (NOTE, NEW_TICKET, APPEND)
NON_PARTICIPANT_KIND = "outsider"  # Message.kind of a mail kept as a note (max 10 chars)
# "@" and its look-alikes: FULLWIDTH COMMERCIAL AT, SMALL COMMERCIAL AT.
_AT_SIGNS = ("@", "\uff20", "\ufe6b")


@dataclass(frozen=True)
class Standing:
    """Whether the sender takes part in the ticket, and what to do with their mail."""

    why: str  # requester | watcher | agent | signed reply address | non-participant
    handling: str  # participant | note | new_ticket | append
    signed: bool = False  # sent to the ticket's signed reply address

    @property
    def participant(self) -> bool:
        return self.handling == PARTICIPANT


def same_address(a: str, b: str) -> bool:
    """Whether two addresses are the same mailbox (case and ``+tag`` ignored)."""
    return bool(a) and bool(b) and base_address(a.strip()) == base_address(b.strip())


def at_signed_address(
    recipients: Iterable[str],
    number: int,
    signer: Signer,
    support: Sequence[str],
    resolve: Callable[[int], int] | None = None,
) -> bool:
    """Whether one of ``recipients`` is the signed reply address of ticket ``number``, or of a
    ticket that ``resolve`` (a signed number -> the ticket its mail goes to) says went into it."""
    signed = {signer.ticket_from_address(r, support) for r in recipients} - {None}
    return counts_for(signed, number, resolve)


def counts_for(
    signed: Iterable[int | None], number: int, resolve: Callable[[int], int] | None
) -> bool:
    """Whether one of the ``signed`` ticket numbers is ``number`` or, through ``resolve`` (asked
    only about other numbers, so mostly never), a ticket merged into it."""
    found = {n for n in signed if n is not None}
    if number in found:
        return True
    return resolve is not None and any(resolve(n) == number for n in found)


def standing(
    sender: str,
    *,
    requester: str,
    watchers: Iterable[str] = (),
    agents: Iterable[str] = (),
    signed: bool = False,
    mode: str = NOTE,
) -> Standing:
    """The sender's standing on a ticket, and (for a non-participant) the configured ``mode``."""
    if same_address(sender, requester):
        return Standing("requester", PARTICIPANT, signed)
    if any(same_address(sender, w) for w in watchers):
        return Standing("watcher", PARTICIPANT, signed)
    if any(same_address(sender, a) for a in agents):
        return Standing("agent", PARTICIPANT, signed)
    if signed:
        return Standing("signed reply address", PARTICIPANT, signed)
    if mode not in MODES:
        raise ValueError(f"threading.non_participants: unknown mode {mode!r}")
    return Standing("non-participant", mode)


def shown_name(name: str | None, email: str, agents: Iterable[str] = ()) -> str:
    """``name`` for display, with the real address beside it when the name could pass for an
    address (it has an ``@``, or is an agent's address); "" for no name."""
    name = (name or "").strip()
    if not name:
        return ""
    lowered = name.lower()
    if any(at in name for at in _AT_SIGNS) or any(lowered == a.lower() for a in agents):
        return f"{name} <{email}>"
    return name
