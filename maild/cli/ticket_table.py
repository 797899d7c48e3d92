"""The ``tickets list`` table: ref, status, priority, team, assignee, requester, age and subject,
fitted to the terminal's width (the subject takes what is left; narrow columns shrink to their
minimum before the subject does), and a last line saying how many rows lie beyond the page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from maild.cli.safe_text import terminal_safe

# (title, key, preferred width, minimum width)
COLUMNS = (
    ("REF", "ref", 10, 6),
    ("STATUS", "status", 8, 4),
    ("PRIO", "priority", 6, 3),
    ("TEAM", "team", 12, 4),
    ("ASSIGNEE", "assignee", 22, 6),
    ("REQUESTER", "requester", 26, 8),
    ("AGE", "age", 4, 3),
)
MIN_SUBJECT = 10


def age(created_at: str | None, now: dt.datetime) -> str:
    """``45m``, ``3h``, ``12d``, ``5mo``, ``2y`` since ``created_at`` (ISO 8601)."""
    if not created_at:
        return "-"
    then = dt.datetime.fromisoformat(created_at)
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("y", 365 * 86400), ("mo", 30 * 86400), ("d", 86400), ("h", 3600)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def _cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text.ljust(width)
    return text[: max(0, width - 1)] + "…"


def widths(rows: Sequence[dict[str, str]], total: int | None) -> tuple[list[int], int]:
    """Each column's width and the subject's, for a terminal ``total`` characters wide; with
    ``total`` None (output to a pipe or file), every column is as wide as its longest value."""
    wanted = []
    for title, key, preferred, _minimum in COLUMNS:
        longest = max([len(title), *(len(r[key]) for r in rows)])
        wanted.append(min(preferred, longest) if key != "ref" and total is not None else longest)
    if total is None:
        return wanted, max([MIN_SUBJECT, *(len(r["subject"]) for r in rows)])
    spaces = len(COLUMNS)  # one between columns, before the subject too
    room = total - spaces - sum(wanted)
    # Narrow columns shrink (widest first) until the subject has its minimum.
    while room < MIN_SUBJECT:
        shrinkable = [i for i, (_t, key, _p, minimum) in enumerate(COLUMNS) if wanted[i] > minimum]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: wanted[i])
        wanted[widest] -= 1
        room += 1
    return wanted, max(room, MIN_SUBJECT)


def render(
    page_rows: Sequence[dict[str, Any]], *, more: int, offset: int, width: int | None
) -> str:
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "ref": r["ref"],
            "status": r.get("substatus") or r["status"],
            "priority": r["priority"],
            "team": terminal_safe(r["team"] or "-"),
            "assignee": terminal_safe(r["assignee"] or "-"),
            "requester": terminal_safe(r["requester"]),
            "age": age(r["created_at"], now),
            "subject": terminal_safe(r["subject"]),
        }
        for r in page_rows
    ]
    cols, subject = widths(rows, width)
    lines = [
        " ".join(
            [*(_cut(title, w) for (title, *_rest), w in zip(COLUMNS, cols, strict=True)), "SUBJECT"]
        ).rstrip()
    ]
    for row in rows:
        cells = [_cut(row[key], w) for (_t, key, *_r), w in zip(COLUMNS, cols, strict=True)]
        lines.append(" ".join([*cells, _cut(row["subject"], subject)]).rstrip())
    if more:
        lines.append(f"... {more} more (--offset {offset + len(rows)} for the next page)")
    return "\n".join(lines)
