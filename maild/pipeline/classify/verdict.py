"""What the classifier answers: the kinds of mail and a :class:`Classification` with every
reason found, and the limits that bound how much of a message is read.
"""

from __future__ import annotations

from dataclasses import dataclass

HUMAN = "human"
AUTOREPLY = "autoreply"
BOUNCE = "bounce"
AUTO_GENERATED = "auto-generated"
LIST = "list"

# How much of a text part is searched for wording (keeps huge mails fast).
_TEXT_LIMIT = 64 * 1024
# Longer header values are decoded from the raw string, not by the policy.
_HEADER_LIMIT = 4096
# How deep multipart nesting is followed.
_MAX_DEPTH = 12


@dataclass(frozen=True)
class Classification:
    """Result of :func:`classify`.

    ``bounced_recipients`` (lower-cased) is only filled for bounces and
    ``original_message_ids`` (without ``<>``) only for robots that refer to an
    earlier message (bounces, auto-replies, reports).  A DSN whose every action
    is ``delayed`` has the reason ``"delivery-status: delayed"`` (the bounce
    handling in :mod:`maild.notify.auto` relies on that exact string).
    """

    kind: str
    reasons: tuple[str, ...]
    bounced_recipients: tuple[str, ...] = ()
    original_message_ids: tuple[str, ...] = ()

    @property
    def is_robot(self) -> bool:
        """True unless a person wrote the message."""
        return self.kind != HUMAN
