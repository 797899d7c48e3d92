"""Labelled examples for triage: from resolved tickets' final values, or from a JSONL file of
``{"text": ..., "team": ..., "priority": ..., "tags": [...]}`` (a history from another system).

Bad input is refused with the file's line: not JSON, not an object, no text, a label that is not
a string, tags that are not a list of strings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from maild.errors import TicketdError
from maild.store.models import Message, Ticket, TicketTag

MAX_TEXT_CHARS = 20_000


class TriageDataError(TicketdError):
    exit_code = 65  # EX_DATAERR


@dataclass(frozen=True)
class Example:
    text: str
    team: str | None = None
    priority: str | None = None
    tags: tuple[str, ...] = ()


def from_jsonl(path: Path) -> list[Example]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TriageDataError(f"{path}: cannot read the file: {exc}") from exc
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TriageDataError(f"{where}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise TriageDataError(f"{where}: expected an object {{text, team, priority, tags}}")
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise TriageDataError(f"{where}: text must be a non-empty string")
        for key in ("team", "priority"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise TriageDataError(f"{where}: {key} must be a string or null")
        tags = row.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TriageDataError(f"{where}: tags must be a list of strings")
        out.append(
            Example(
                text=text[:MAX_TEXT_CHARS],
                team=(row.get("team") or None),
                priority=(row.get("priority") or None),
                tags=tuple(sorted({t.lower() for t in tags})),
            )
        )
    return out


def from_tickets() -> list[Example]:
    """Resolved and closed tickets (not spam): subject and first customer message, final labels."""
    tickets = list(
        Ticket.select()
        .where(Ticket.status.in_(("resolved", "closed")) & ~Ticket.spam)
        .order_by(Ticket.id)
    )
    if not tickets:
        return []
    ids = [t.id for t in tickets]
    first: dict[int, str] = {}
    rows = (
        Message.select(Message.ticket, Message.body)
        .where(Message.ticket.in_(ids) & (Message.direction == "in") & (Message.kind == "customer"))
        .order_by(Message.id)
    )
    for row in rows:
        first.setdefault(row.ticket_id, row.body)
    tags: dict[int, list[str]] = {}
    for tag in TicketTag.select().where(TicketTag.ticket.in_(ids)):
        tags.setdefault(tag.ticket_id, []).append(tag.tag)
    return [
        Example(
            text=f"{t.subject}\n{first.get(t.id, '')}"[:MAX_TEXT_CHARS],
            team=t.team,
            priority=t.priority,
            tags=tuple(sorted(tags.get(t.id, []))),
        )
        for t in tickets
    ]
