"""What our border MTA says about a mail's sender domain: reading ``Authentication-Results``.

Anyone can write an ``Authentication-Results`` header into the mail they send, with any
authserv-id (RFC 8601 section 5). Only the receiving MTA's own headers mean anything, and they are
the ones it writes on arrival, above the ``Received`` header it adds. So only headers

- whose authserv-id equals the configured one (``agents.authserv_id``), and
- that stand above the first ``Received`` header (a mail without any ``Received`` header came
  from nobody's MTA: nothing counts)

are read. The MTA must also remove incoming headers with its own id (OpenDKIM, OpenDMARC and
rspamd can; see the README), otherwise a sender's forged header could never be told from ours.

A domain is *vouched for* by ``dmarc=pass`` with ``header.from`` equal to it, or by
``dkim=pass`` whose ``header.d`` is the domain or a parent of it (``example.com`` signs for
``mail.example.com``; a parent needs two labels, so ``com`` never counts). ``header.i`` alone
never counts: the signer chooses it freely within ``header.d``, so ``header.d=evil.test
header.i=@example.com`` is a signature of evil.test. A ``dmarc=fail`` for the domain among our
results (a second header, or a contradiction) wins over any pass.

Parsing is the ``authres`` library's (RFC 8601); a header it cannot read is skipped. Everything
here is pure: headers in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import authres  # type: ignore[import-untyped]  # the library ships no type hints

AUTH_RESULTS = "authentication-results"
RECEIVED = "received"


@dataclass(frozen=True)
class AuthResult:
    """One ``method=result`` of an Authentication-Results header, with its properties."""

    method: str  # dkim, dmarc, spf ... (lower case)
    result: str  # pass, fail, none ... (lower case)
    props: tuple[tuple[str, str], ...] = ()  # ("header.d", "example.com"), domains lower-cased

    def prop(self, name: str) -> str:
        return next((v for k, v in self.props if k == name), "")


def parse_header(value: str) -> tuple[str, tuple[AuthResult, ...]] | None:
    """``(authserv-id, results)`` of one header value (without the name); None if unreadable."""
    try:
        parsed = authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
    except (authres.AuthResError, ValueError, IndexError, AttributeError):
        return None
    results = []
    for r in parsed.results:
        props = tuple(
            (f"{p.type}.{p.name}".lower(), str(p.value or "").strip().lower()) for p in r.properties
        )
        results.append(AuthResult(str(r.method).lower(), str(r.result).lower(), props))
    return str(parsed.authserv_id or "").lower(), tuple(results)


def our_results(headers: Sequence[tuple[str, str]], authserv_id: str) -> tuple[AuthResult, ...]:
    """The results of the headers with ``authserv_id`` above the first ``Received`` header.

    ``headers`` are (lower-cased name, value) in message order, as :class:`InboundMessage` keeps
    them."""
    wanted = authserv_id.strip().lower()
    if not wanted or not any(name == RECEIVED for name, _ in headers):
        return ()
    found: list[AuthResult] = []
    for name, value in headers:
        if name == RECEIVED:
            break
        if name != AUTH_RESULTS:
            continue
        parsed = parse_header(value)
        if parsed is not None and parsed[0] == wanted:
            found.extend(parsed[1])
    return tuple(found)


def _is_self_or_parent(signer: str, domain: str) -> bool:
    if signer == domain:
        return True
    return signer.count(".") >= 1 and domain.endswith("." + signer)


def dmarc_fails(results: Sequence[AuthResult], domain: str) -> bool:
    """Whether our MTA found ``domain`` failing DMARC (``dmarc=fail header.from=domain``)."""
    domain = domain.lower()
    return any(
        r.method == "dmarc" and r.result == "fail" and r.prop("header.from") == domain
        for r in results
    )


def vouches_for(results: Sequence[AuthResult], domain: str) -> str | None:
    """The result that vouches for ``domain`` (``"dkim=pass header.d=example.com"``), or None."""
    domain = domain.lower()
    if not domain or dmarc_fails(results, domain):
        return None
    for r in results:
        if r.result != "pass":
            continue
        if r.method == "dmarc" and r.prop("header.from") == domain:
            return f"dmarc=pass header.from={domain}"
        signer = r.prop("header.d")
        if r.method == "dkim" and signer and _is_self_or_parent(signer, domain):
            return f"dkim=pass header.d={signer}"
    return None


def domain_of(address: str) -> str:
    """The domain part of an address, lower case ("" without one)."""
    return address.rpartition("@")[2].lower() if "@" in address else ""
