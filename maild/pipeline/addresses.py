"""Signed reply addresses and signed Message-IDs, and recognising our own support addresses.

A ticket's reply address is ``local+PREFIX-N.TOKEN@domain`` and our outgoing Message-IDs are
``<PREFIX-N.NONCE.SIG@domain>``; TOKEN and SIG are truncated HMAC-SHA256 values under the instance
secret, so only we can make them, and a reply to either threads to the ticket even when the customer
rewrote the subject. Tokens are lower-case hex because mail systems may lower-case local parts.

Mail to an agent carries the agent's own reply address for the ticket, whose TOKEN also covers the
agent's address. The customer sees only the ticket's address, so knowing it (every acknowledgement
shows it) and forging an agent's From is not enough to be trusted as that agent: the agent's token
verifies only together with that agent's address as the sender.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TOKEN_LEN = 16  # hex characters: 64 bits
LOOP_HEADER = "X-Ticketd-Loop"  # on all our mail; intake knows its own value


def loop_token(secret: bytes) -> str:
    """The value of our loop header: names the instance, stable across restarts, unguessable."""
    return hmac.new(secret, b"loop", hashlib.sha256).hexdigest()[:TOKEN_LEN]


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:TOKEN_LEN]


def ref_of(prefix: str, number: int) -> str:
    return f"{prefix}-{number}"


@dataclass(frozen=True)
class Signer:
    """Makes and checks the signed forms for one instance (prefix + secret)."""

    prefix: str
    secret: bytes

    def reply_address(self, support_address: str, number: int) -> str:
        local, _, domain = support_address.partition("@")
        ref = ref_of(self.prefix, number)
        return f"{local}+{ref}.{_mac(self.secret, 'addr:' + ref)}@{domain}"

    def agent_reply_address(self, support_address: str, number: int, agent: str) -> str:
        """The reply address for ``agent`` on ticket ``number``: valid only with their From."""
        local, _, domain = support_address.partition("@")
        ref = ref_of(self.prefix, number)
        return f"{local}+{ref}.{_mac(self.secret, _agent_message(ref, agent))}@{domain}"

    def ticket_from_address(
        self, address: str, support: Sequence[str], *, sender: str | None = None
    ) -> int | None:
        """The ticket number a signed reply address names, if its token verifies: the ticket's
        token, or (with ``sender``) the sender's own agent token."""
        return self._verify(address, support, sender, ticket_token=True)

    def agent_ticket_from_address(
        self, address: str, support: Sequence[str], sender: str
    ) -> int | None:
        """The ticket number, only if ``address`` is ``sender``'s own agent reply address."""
        return self._verify(address, support, sender, ticket_token=False)

    def _verify(
        self, address: str, support: Sequence[str], sender: str | None, *, ticket_token: bool
    ) -> int | None:
        local, _, domain = address.lower().partition("@")
        base, plus, tag = local.partition("+")
        if not plus or f"{base}@{domain}" not in {s.lower() for s in support}:
            return None
        match = re.fullmatch(rf"{self.prefix.lower()}-(\d{{1,12}})\.([0-9a-f]{{{TOKEN_LEN}}})", tag)
        if not match:
            return None
        ref = ref_of(self.prefix, int(match.group(1)))
        token = match.group(2)
        if ticket_token and hmac.compare_digest(_mac(self.secret, "addr:" + ref), token):
            return int(match.group(1))
        if sender and hmac.compare_digest(_mac(self.secret, _agent_message(ref, sender)), token):
            return int(match.group(1))
        return None

    def message_id(self, number: int, domain: str) -> str:
        """A new signed Message-ID (without angle brackets) for mail about ticket ``number``."""
        ref = ref_of(self.prefix, number)
        nonce = secrets.token_hex(6)
        return f"{ref}.{nonce}.{_mac(self.secret, f'mid:{ref}.{nonce}')}@{domain}"

    def ticket_from_message_id(self, message_id: str) -> int | None:
        """The ticket number a signed Message-ID of ours names, if its signature verifies."""
        match = re.fullmatch(
            rf"{re.escape(self.prefix)}-(\d{{1,12}})\.([0-9a-f]{{12}})\.([0-9a-f]{{{TOKEN_LEN}}})@.+",
            message_id,
        )
        if not match:
            return None
        ref = ref_of(self.prefix, int(match.group(1)))
        expected = _mac(self.secret, f"mid:{ref}.{match.group(2)}")
        return int(match.group(1)) if hmac.compare_digest(expected, match.group(3)) else None


def _agent_message(ref: str, agent: str) -> str:
    return f"agent:{ref}:{agent.strip().lower()}"


def base_address(address: str) -> str:
    """``local+tag@domain`` -> ``local@domain``, lower-cased."""
    local, _, domain = address.lower().partition("@")
    return f"{local.partition('+')[0]}@{domain}"


def is_support_address(address: str, support: Iterable[str]) -> bool:
    """True for a support address and any of its ``+tag`` forms."""
    return base_address(address) in {s.lower() for s in support}
