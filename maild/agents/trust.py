"""Is this mail really from the agent its From names? The signed address, or our MTA's verdict.

A mail counts as the agent's when its From is an agent's address (``rules/10-people.yaml``) and

1. it was sent to the ticket's signed reply address (``support+ACME-42.TOKEN@...``, whose token
   only we can make; a tampered token verifies for no ticket), or
2. the border MTA's ``Authentication-Results`` vouch for the agent's domain: ``dmarc=pass`` with
   ``header.from`` that domain, or ``dkim=pass`` with ``header.d`` that domain or its parent
   (``header.i`` alone never counts). Only headers with ``agents.authserv_id`` above the first
   ``Received`` header are read (:mod:`maild.pipeline.authres`, RFC 8601 section 5). Without
   ``agents.authserv_id`` only (1) applies.

Everything here is pure: it reads the parsed message and returns a verdict with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from maild.pipeline.addresses import Signer
from maild.pipeline.authres import our_results, vouches_for
from maild.pipeline.message import InboundMessage
from maild.pipeline.participants import counts_for


@dataclass(frozen=True)
class Verdict:
    """Whether the mail is the agent's, and why (for the audit trail and the warning mail)."""

    trusted: bool
    how: str


def signed_for(
    msg: InboundMessage,
    number: int,
    signer: Signer,
    support: Sequence[str],
    agent_email: str,
    resolve: Callable[[int], int] | None = None,
) -> bool:
    """Whether ``msg`` went to ``agent_email``'s own signed reply address for ticket ``number``
    or for a ticket ``resolve`` says was merged into it (envelope, To or Cc). The ticket's
    address, which customers see, does not count."""
    signed = [signer.agent_ticket_from_address(a, support, agent_email) for a in msg.recipients]
    return counts_for(signed, number, resolve)


def check(
    msg: InboundMessage,
    *,
    agent_email: str,
    number: int,
    signer: Signer,
    support: Sequence[str],
    authserv_id: str | None,
    resolve: Callable[[int], int] | None = None,
) -> Verdict:
    """Whether ``msg`` (From the agent ``agent_email``) about ticket ``number`` (or a ticket
    merged into it, whose notifications the agent may be answering) is the agent's."""
    if signed_for(msg, number, signer, support, agent_email, resolve):
        return Verdict(True, "signed reply address")
    domain = agent_email.rpartition("@")[2]
    if authserv_id:
        found = vouches_for(our_results(msg.headers, authserv_id), domain)
        if found:
            return Verdict(True, f"Authentication-Results {authserv_id}: {found}")
        why = (
            f"no Authentication-Results of {authserv_id} above the first Received header"
            f" shows a pass for {domain}"
        )
    else:
        why = "agents.authserv_id is not configured"
    return Verdict(False, f"not sent to the ticket's signed reply address, and {why}")
