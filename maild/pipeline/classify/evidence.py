"""What the signals found in one message, gathered before the decision is taken."""

from __future__ import annotations

from dataclasses import dataclass, field

# --------------------------------------------------------------------------
# Evidence
# --------------------------------------------------------------------------


@dataclass
class _Evidence:
    """Signals collected while looking at one message.

    ``hints`` are internal labels the decision works on; ``reasons`` are what
    the caller gets to see.
    """

    reasons: list[str] = field(default_factory=list)
    hints: set[str] = field(default_factory=set)
    recipients: list[str] = field(default_factory=list)
    original_ids: list[str] = field(default_factory=list)
    reply_ids: list[str] = field(default_factory=list)
    subject: str = ""
    text: str = ""

    def add(self, reason: str, *hints: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        self.hints.update(hints)

    def has(self, *hints: str) -> bool:
        return any(h in self.hints for h in hints)


@dataclass
class _DsnRecipient:
    """One per-recipient block of a delivery-status report."""

    final: str = ""
    original: str = ""
    action: str = ""
    status: str = ""
