"""What our MTA says about a mail's spamminess and its sender's domain, for the rules.

Spam filters (SpamAssassin, rspamd) and the border MTA write their verdict into headers on
arrival, above the ``Received`` header the MTA adds. A sender can write the same headers into
their mail, but those stand below it. So only the headers above the first ``Received`` header
count, and of each only the topmost:

- ``X-Spam-Flag: YES|NO``; else the first word of ``X-Spam-Status: Yes, score=7.1 ...``;
- the score: ``X-Spam-Score``, else ``score=`` (or ``hits=``) in ``X-Spam-Status``;
- ``spf``, ``dkim``, ``dmarc``: the results of the topmost ``Authentication-Results`` header
  whose authserv-id is ``agents.authserv_id`` (none without one), for the sender's domain:
  spf by ``smtp.mailfrom`` (or ``smtp.helo``) in that domain, dkim by ``header.d`` equal to the
  domain or a parent of it, dmarc by ``header.from``.

Pure: headers in, a verdict out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from maild.pipeline.authres import AUTH_RESULTS, RECEIVED, AuthResult, parse_header

_SCORE = re.compile(r"(?:score|hits)\s*=\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class MtaVerdict:
    flag: bool | None = None  # None: the MTA said nothing
    score: float | None = None
    spf: tuple[str, ...] = ()  # results for the sender's domain, lower case
    dkim: tuple[str, ...] = ()
    dmarc: tuple[str, ...] = ()

    def field(self, name: str) -> tuple[str, ...]:
        """A condition field's values: ``spam_flag`` (yes/no), ``spf``, ``dkim``, ``dmarc``."""
        if name == "spam_flag":
            return () if self.flag is None else ("yes" if self.flag else "no",)
        return {"spf": self.spf, "dkim": self.dkim, "dmarc": self.dmarc}[name]


def trace_block(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers our MTA wrote: those above the first ``Received`` (none without one)."""
    block: list[tuple[str, str]] = []
    for name, value in headers:
        if name == RECEIVED:
            return block
        block.append((name, value))
    return []


def _in_domain(value: str, domain: str) -> bool:
    host = value.rpartition("@")[2].lower()
    return bool(domain) and (host == domain or host.endswith("." + domain))


def _signs_for(signer: str, domain: str) -> bool:
    return signer == domain or (signer.count(".") >= 1 and domain.endswith("." + signer))


def mta_verdict(headers: Sequence[tuple[str, str]], *, authserv_id: str, domain: str) -> MtaVerdict:
    """The verdict of our MTA's own headers on a mail from ``domain``."""
    block = trace_block(headers)

    def first(name: str) -> str | None:
        return next((v for n, v in block if n == name), None)

    flag_value, status = first("x-spam-flag"), first("x-spam-status")
    flag: bool | None = None
    if flag_value is not None and flag_value.strip():
        flag = flag_value.strip().lower().startswith("y")
    elif status is not None and status.strip():
        flag = status.strip().lower().startswith("y")
    score: float | None = None
    found = _NUMBER.match(first("x-spam-score") or "") or _SCORE.search(status or "")
    if found is not None:
        score = float(found.group(1))
    results: tuple[AuthResult, ...] = ()
    wanted = authserv_id.strip().lower()
    if wanted:
        for name, value in block:
            if name != AUTH_RESULTS:
                continue
            parsed = parse_header(value)
            if parsed is not None and parsed[0] == wanted:
                results = parsed[1]
                break  # only the topmost of ours
    domain = domain.lower()
    spf = tuple(
        r.result
        for r in results
        if r.method == "spf" and _in_domain(r.prop("smtp.mailfrom") or r.prop("smtp.helo"), domain)
    )
    dkim = tuple(
        r.result for r in results if r.method == "dkim" and _signs_for(r.prop("header.d"), domain)
    )
    dmarc = tuple(
        r.result for r in results if r.method == "dmarc" and r.prop("header.from") == domain
    )
    return MtaVerdict(flag, score, spf, dkim, dmarc)
