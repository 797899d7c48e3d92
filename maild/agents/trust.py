"""Is this mail really from the agent its From names? The signed address, or our MTA's verdict.

A mail counts as the agent's when its From is an agent's address (``rules/10-people.yaml``) and

1. it was sent to the ticket's signed reply address (``support+ACME-42.TOKEN@...``, whose token
   only we can make; a tampered token verifies for no ticket), or
2. the border MTA's ``Authentication-Results`` header shows ``dmarc=pass`` with ``header.from``
   the agent's domain, or ``dkim=pass`` with ``header.d`` the agent's domain (or ``header.i`` an
   identity in it). Only headers whose authserv-id equals ``agents.authserv_id`` count, and only
   the topmost ones: reading from the top, the first header with our id and the
   Authentication-Results headers directly under it. Anyone can write such a header into the
   mail they send (RFC 8601 section 5), so one from another id, or ours further down under a
   Received or any other header, is ignored. Without ``agents.authserv_id`` only (1) applies.

Everything here is pure: it reads the parsed message and returns a verdict with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from maild.pipeline.addresses import Signer
from maild.pipeline.message import InboundMessage

HEADER = "authentication-results"
# "method=result" or "ptype.property=value"; a value may be a quoted string.
_DOMAIN_PROPS = frozenset({"header.d", "header.i", "header.from", "smtp.mailfrom", "smtp.helo"})
_PAIR = re.compile(r'([A-Za-z0-9_.-]+)(?:/\d+)?\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;"]*)')


@dataclass(frozen=True)
class AuthResult:
    """One ``method=result`` of an Authentication-Results header, with its properties."""

    method: str  # dkim, dmarc, spf ... (lower case)
    result: str  # pass, fail, none ... (lower case)
    props: tuple[tuple[str, str], ...] = ()  # (ptype.property, value), e.g. ("header.d", "x.com")

    def prop(self, name: str) -> str:
        return next((v for k, v in self.props if k == name), "")


@dataclass(frozen=True)
class Verdict:
    """Whether the mail is the agent's, and why (for the audit trail and the warning mail)."""

    trusted: bool
    how: str


def strip_comments(value: str) -> str:
    """The header value without RFC 5322 comments (nested parentheses), quoted strings kept."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if quoted:
            quoted = ch != '"'
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                out.append(" ")
        elif depth == 0:
            quoted = ch == '"'
            out.append(ch)
    return "".join(out)


def _split(value: str) -> list[str]:
    """Split on ``;`` outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted, escaped = False, False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def parse_header(value: str) -> tuple[str, tuple[AuthResult, ...]] | None:
    """``(authserv-id, results)`` of one Authentication-Results value; None if unreadable."""
    parts = _split(strip_comments(value))
    head = parts[0].split()
    if not head:
        return None
    results: list[AuthResult] = []
    for part in parts[1:]:
        pairs = [(k.lower(), v.strip('"')) for k, v in _PAIR.findall(part)]
        if not pairs or "." in pairs[0][0]:
            continue  # "none", or a stray property without a method
        method, result = pairs[0]
        props = tuple((k, v.lower() if k in _DOMAIN_PROPS else v) for k, v in pairs[1:])
        results.append(AuthResult(method, result.lower(), props))
    return head[0].lower(), tuple(results)


def our_results(headers: Sequence[tuple[str, str]], authserv_id: str) -> tuple[AuthResult, ...]:
    """The results of the topmost Authentication-Results headers with ``authserv_id``."""
    wanted = authserv_id.strip().lower()
    found: list[AuthResult] = []
    started = False
    for name, value in headers:
        if name != HEADER:
            if started:
                break  # our MTA's headers are adjacent at the top; anything below is the sender's
            continue
        parsed = parse_header(value)
        if parsed is None or parsed[0] != wanted:
            continue
        started = True
        found.extend(parsed[1])
    return tuple(found)


def passing(results: Sequence[AuthResult], domain: str) -> str | None:
    """The first result that vouches for ``domain`` (``"dkim=pass header.d=..."``), or None."""
    domain = domain.lower()
    for r in results:
        if r.result != "pass":
            continue
        if r.method == "dmarc" and r.prop("header.from") == domain:
            return f"dmarc=pass header.from={domain}"
        if r.method == "dkim":
            if r.prop("header.d") == domain:
                return f"dkim=pass header.d={domain}"
            identity = r.prop("header.i")
            if identity and identity.rpartition("@")[2] == domain:
                return f"dkim=pass header.i={identity}"
    return None


def signed_for(
    msg: InboundMessage, number: int, signer: Signer, support: Sequence[str], agent_email: str
) -> bool:
    """Whether ``msg`` went to ``agent_email``'s own signed reply address for ticket ``number``
    (envelope, To or Cc). The ticket's address, which customers see, does not count."""
    return any(
        signer.agent_ticket_from_address(a, support, agent_email) == number for a in msg.recipients
    )


def check(
    msg: InboundMessage,
    *,
    agent_email: str,
    number: int,
    signer: Signer,
    support: Sequence[str],
    authserv_id: str | None,
) -> Verdict:
    """Whether ``msg`` (From the agent ``agent_email``) about ticket ``number`` is the agent's."""
    if signed_for(msg, number, signer, support, agent_email):
        return Verdict(True, "signed reply address")
    domain = agent_email.rpartition("@")[2]
    if authserv_id:
        found = passing(our_results(msg.headers, authserv_id), domain)
        if found:
            return Verdict(True, f"Authentication-Results {authserv_id}: {found}")
        why = f"no Authentication-Results of {authserv_id} at the top shows a pass for {domain}"
    else:
        why = "agents.authserv_id is not configured"
    return Verdict(False, f"not sent to the ticket's signed reply address, and {why}")
