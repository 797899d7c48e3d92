"""Every shipped template, rendered with realistic values, reads well as plain text.

Three properties, for the admin's copies in ``templates/`` and the package defaults alike:

- the signature (``-- `` and what follows) appears once, and an agent's name once, whether or not
  the agent signed their text;
- the field lines of a notification (``  Status:    open``) are one field per line, with a blank
  line between them and the text that follows;
- prose is never hard-wrapped inside a sentence: a line of text that does not end a sentence is
  not followed by more text on the next line (paragraphs are single lines; mail clients wrap).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from maild.notify.templates import DEFAULTS_DIR, Renderer
from maild.pipeline.quotes import REPLY_MARKER

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
NAMES = sorted(
    p.name[: -len(".txt.j2")] for p in SHIPPED.glob("*.txt.j2") if not p.name.startswith("_")
)
BODY = (
    "Hello,\n\nthe CSV export stops half-way since Monday; the file it leaves behind cannot be "
    "opened.\n\nThanks,\nCarol"
)
FIELD = re.compile(r"\b[A-Z][a-z]+:\s{2,}")  # "Status:    " as the templates align them


def context(name: str, *, body: str = BODY, agent_name: str = "Alice") -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "ticket": {
            "ref": "ACME-42",
            "tag": "[ACME-42]",
            "subject": "The CSV export stops half-way",
            "status": "open",
            "status_label": "open",  # the custom status's label when there is one
            "priority": "high",
            "team": "billing",
            "assignee": "alice@example.com",
            "tags": ["billing", "vip"],
            "created_at": "2026-12-01T09:15:00+00:00",
        },
        "requester": {"email": "carol@customer.test", "name": "Carol Díaz"},
        "message": {
            "body": body,
            "from": "carol@customer.test",
            "from_name": "Carol Díaz",
            "subject": "The CSV export stops half-way",
        },
        "agent": {"email": "alice@example.com", "name": agent_name},
        "instance": {"name": "Example Support", "support_address": "support@example.com"},
        "reply_marker": REPLY_MARKER,
        "status_url": "http://127.0.0.1:8025/t/ACME-42?k=eyJ0IjoiQUNNRS00MiJ9.Zq3x9w.s1gn4ture",
        "survey": {
            "links": [
                {
                    "rating": r,
                    "label": label,
                    "url": f"mailto:support+ACME-42.k3y@example.com?subject=%5BACME-42%5D%20Rating%3A%20{r}",
                }
                for r, label in enumerate(("bad", "poor", "okay", "good", "excellent"), 1)
            ],
            "labels": {1: "bad", 2: "poor", 3: "okay", 4: "good", 5: "excellent"},
        },
        "escalation": {
            "policy": "standard",
            "step": "75% first_response",
            "target": "first_response",
            "breach": False,
            "percent": 75,
            "due": "2026-12-01T17:15:00+00:00",
            "changes": ["priority urgent"],
        },
        "reminder": {
            "pending_since": "2026-11-28T10:00:00+00:00",
            "resolve_at": "2026-12-05T10:00:00+00:00",
            "days": 3,
        },
        "assignment": {"by": "rule:Billing questions", "previous": "bob@example.com"},
        "mention": {"by": "Alice", "note": body},
        "errors": [{"line": 1, "text": "#stauts open", "reason": "unknown command #stauts"}],
        "failure": {"reason": "550 5.1.1 <carol@customer.test>: mailbox unavailable"},
        "merged": {"ref": "ACME-41", "subject": "CSV export broken"},
        "forgery": {"claimed": "alice@example.com", "reason": "not sent to the signed address"},
        "suggestions": [
            {
                "slug": "csv-export",
                "title": "Exporting large CSV files",
                "score": 0.8,
                "url": "http://127.0.0.1:8025/kb/csv-export",
                "solved_url": "http://127.0.0.1:8025/kb/solved/ACME-42?k=WzQyLCJhYiJd.s1gn",
                "text": "",
            }
        ],
    }
    return ctx


def render(folder: Path, name: str, **kwargs: Any) -> str:
    rendered = Renderer(folder).render(name, context(name, **kwargs))
    assert rendered.error is None, rendered.error
    return rendered.text


def before_signature(text: str) -> list[str]:
    lines = text.replace(BODY, "(the message)").splitlines()
    return lines[: lines.index("-- ")] if "-- " in lines else lines


def is_prose(line: str) -> bool:
    return bool(re.search(r"[A-Za-z]", line)) and not re.match(r"[\s#>|*-]", line)


FOLDERS = pytest.mark.parametrize("folder", [SHIPPED, DEFAULTS_DIR], ids=["templates", "defaults"])


def test_every_shipped_template_is_checked() -> None:
    assert {"ack", "agent_reply", "notify_new", "notify_reply", "survey"} <= set(NAMES)


@FOLDERS
@pytest.mark.parametrize("name", NAMES)
def test_the_signature_appears_once(folder: Path, name: str) -> None:
    text = render(folder, name)
    assert text.splitlines().count("-- ") <= 1
    assert text.count("Example Support\nsupport@example.com") <= 1


@FOLDERS
@pytest.mark.parametrize(
    "body",
    [
        "Hello Carol,\n\nthe export is fixed; please try again.",
        "Hello Carol,\n\nthe export is fixed; please try again.\n\nAlice",
        "Hello Carol,\n\nthe export is fixed; please try again.\n\nBest,\nalice\n",
    ],
    ids=["unsigned", "signed", "signed in lower case"],
)
def test_an_agents_answer_carries_their_name_once(folder: Path, body: str) -> None:
    text = render(folder, "agent_reply", body=body)
    lines = [line.strip().lower() for line in text.splitlines()]
    assert lines.count("alice") == 1, text
    assert lines.count("--") == 1
    # Their name comes after their text, before the signature.
    assert lines.index("alice") < lines.index("--")
    assert "the export is fixed; please try again." in lines[: lines.index("alice")]


def test_an_agent_with_a_full_name_who_signs_with_the_first_name_is_not_signed_twice() -> None:
    text = render(
        SHIPPED, "agent_reply", body="It works again.\n\nAlice", agent_name="Alice Liddell"
    )
    assert "Alice Liddell" not in text
    assert text.splitlines().count("Alice") == 1


@FOLDERS
@pytest.mark.parametrize("name", NAMES)
def test_notification_fields_are_one_per_line_with_a_blank_line_after(
    folder: Path, name: str
) -> None:
    lines = render(folder, name).splitlines()
    fields = [i for i, line in enumerate(lines) if FIELD.search(line)]
    for i in fields:
        assert len(FIELD.findall(lines[i])) == 1, lines[i]
        assert lines[i].startswith("  "), lines[i]
        follows = lines[i + 1] if i + 1 < len(lines) else ""
        assert follows == "" or FIELD.search(follows), f"no blank line after {lines[i]!r}"


def test_a_new_ticket_notification_shows_tags_on_their_own_line_and_the_body_apart() -> None:
    lines = render(SHIPPED, "notify_new").splitlines()
    assert "  Tags:      billing, vip" in lines
    assert "  Assignee:  alice@example.com" in lines
    tags = lines.index("  Tags:      billing, vip")
    assert lines[tags + 1] == ""
    assert lines[tags + 2] == "Hello,"


@FOLDERS
@pytest.mark.parametrize("name", NAMES)
def test_plain_text_is_never_hard_wrapped_inside_a_sentence(folder: Path, name: str) -> None:
    lines = before_signature(render(folder, name))
    for line, following in itertools.pairwise(lines):
        if is_prose(line) and is_prose(following):
            assert re.search(r"[.!?:]\"?$", line.rstrip()), f"wrapped mid-sentence: {line!r}"


def test_the_acknowledgement_opens_the_ticket_in_one_sentence_on_one_line() -> None:
    text = render(SHIPPED, "ack")
    assert (
        "thank you for writing to Example Support. We have received your message and opened "
        'ticket ACME-42: "The CSV export stops half-way".'
    ) in text.splitlines()


@FOLDERS
@pytest.mark.parametrize("name", NAMES)
def test_a_body_with_trailing_blank_lines_leaves_no_gap_of_blank_lines(
    folder: Path, name: str
) -> None:
    text = render(folder, name, body="Hello,\n\nmy printer is on fire.\n\n\n\n")
    assert "\n\n\n" not in text, text
