"""Knowledge-base suggestions in the acknowledgement, through the worker on SQLite and
PostgreSQL: what fits is suggested (nothing when nothing fits), article HTML and Jinja stay text,
the text is inline without the HTTP server, a one-word "solved" reply resolves the ticket as
self-solved, and the report counts the deflection."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from maild.app import App
from maild.kb.solved import mark_self_solved
from maild.reports.period import Period
from maild.reports.query import build_report
from maild.store.models import Event, KbSuggestion, Message, Ticket
from tests.kbkit import article, write_articles
from tests.mailgen import make_mail
from tests.servers.deskmail import deliver, events, outbox

PUBLIC = "https://help.example.com"
JAM = {"subject": "Paper jam", "body": "The printer has a paper jam again, what can I do?"}


def make_app(app_factory: Callable[..., App], url: str, tmp_path: Path, http: bool) -> App:
    write_articles(tmp_path / "kb")
    return app_factory(
        url, kb_dir=str(tmp_path / "kb"), http={"enabled": http, "public_url": PUBLIC}
    )


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str, tmp_path: Path) -> App:
    return make_app(app_factory, any_db_url, tmp_path, http=True)


_SERIAL = itertools.count(1)


def arrive(app: App, subject: str, body: str) -> Ticket:
    # A number keeps subjects apart and is no search word: the scores do not vary by chance.
    subject = f"{subject} #{next(_SERIAL)}"
    deliver(app, make_mail(subject=subject, body=body))
    return Ticket.get(Ticket.subject == subject)


def ack_of(ticket: Ticket) -> EmailMessage:
    (kind, _to, mail), *_ = outbox(ticket)
    assert kind == "auto"
    return mail


def parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_the_acknowledgement_suggests_the_fitting_article_with_its_page_and_solved_link(
    app: App,
) -> None:
    ticket = arrive(app, **JAM)
    text, html = parts(ack_of(ticket))
    assert "While you wait, these articles may answer your question:" in text
    assert "Clearing a paper jam in the printer:" in text
    assert f"{PUBLIC}/kb/printer-jam" in text
    assert f"That solved it? {PUBLIC}/kb/solved/ACME-{ticket.id}?k=" in text
    assert f'<a href="{PUBLIC}/kb/printer-jam">Clearing a paper jam in the printer</a>' in html
    assert "Resetting your password" not in text
    (row,) = KbSuggestion.select().where(KbSuggestion.ticket == ticket)
    assert row.slug == "printer-jam" and row.score >= app.config.kb.min_score


def test_nothing_is_suggested_when_nothing_fits(app: App) -> None:
    ticket = arrive(app, "Parcel", "Where is my parcel? It left the warehouse on Monday.")
    text, _html = parts(ack_of(ticket))
    assert "articles may answer" not in text
    assert KbSuggestion.select().count() == 0


def test_html_and_jinja_in_an_article_stay_text_in_the_mail(app: App, tmp_path: Path) -> None:
    (tmp_path / "kb" / "printer-jam.md").write_text(
        article(
            "Paper jam <b>fix</b> {{ 7 * 7 }}",
            "[printer]",
            "<script>alert(1)</script> {% raw %}x{% endraw %} {{ ticket.ref }}",
        )
    )
    ticket = arrive(app, **JAM)
    text, html = parts(ack_of(ticket))
    assert "Paper jam <b>fix</b> {{ 7 * 7 }}:" in text  # plain text: as written, not evaluated
    assert "49" not in text
    assert "Paper jam &lt;b&gt;fix&lt;/b&gt; {{ 7 * 7 }}</a>" in html
    assert "<b>fix</b>" not in html


def test_without_the_http_server_the_article_is_inline_and_escaped(
    app_factory: Callable[..., App], any_db_url: str, tmp_path: Path
) -> None:
    app = make_app(app_factory, any_db_url, tmp_path, http=False)
    (tmp_path / "kb" / "printer-jam.md").write_text(
        article("Clearing a paper jam", "[printer]", "Open the cover. <script>x()</script>")
    )
    ticket = arrive(app, **JAM)
    text, html = parts(ack_of(ticket))
    assert "Open the cover. <script>x()</script>" in text
    assert "/kb/" not in text
    assert 'reply with the single word "solved"' in text
    assert "Open the cover. &lt;script&gt;x()&lt;/script&gt;" in html
    assert "<script>" not in html


def reply(app: App, ticket: Ticket, body: str) -> None:
    first = Message.get((Message.ticket == ticket) & (Message.direction == "in"))
    deliver(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] {ticket.subject}",
            body=f"{body}\n\nOn Mon, Nov 2, 2026 Support wrote:\n> Hello\n",
            in_reply_to=first.message_id,
        ),
    )


def test_a_one_word_solved_reply_resolves_the_ticket_as_self_solved(app: App) -> None:
    ticket = arrive(app, **JAM)
    reply(app, ticket, "Solved!")
    ticket = Ticket.get_by_id(ticket.id)
    assert ticket.status == "resolved"
    (event,) = events(ticket, "self_solved")
    assert event == {"actor": "carol@customer.test", "via": "mail", "article": None}
    status = [e for e in events(ticket, "status") if e.get("reason") == "self-solved"]
    assert status


def test_solved_means_nothing_on_a_ticket_that_was_suggested_nothing_or_in_a_sentence(
    app: App,
) -> None:
    plain = arrive(app, "Parcel", "Where is my parcel? It left the warehouse on Monday.")
    reply(app, plain, "solved")
    assert Ticket.get_by_id(plain.id).status != "resolved"
    jam = arrive(app, **JAM)
    reply(app, jam, "It is not solved, the jam is still there.")
    assert Ticket.get_by_id(jam.id).status != "resolved"
    assert Event.select().where(Event.action == "self_solved").count() == 0


def test_the_report_counts_suggested_and_self_solved_tickets_per_article(app: App) -> None:
    by_mail = arrive(app, **JAM)
    by_link = arrive(app, **JAM)
    arrive(app, "Parcel", "Where is my parcel? It left the warehouse on Monday.")
    reply(app, by_mail, "solved")
    with app.db.atomic():  # what the link's POST does (tests/integration/test_kb_web.py)
        assert mark_self_solved(
            app,
            by_link,
            actor="carol@customer.test",
            at=by_link.created_at,
            via="link",
            article="printer-jam",
        )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    report = build_report(app.db, Period(now - dt.timedelta(days=1), now + dt.timedelta(hours=1)))
    d: Any = report.deflection
    assert (d.suggested, d.self_solved, d.share) == (2, 2, 1.0)
    assert [(a.slug, a.suggested, a.self_solved) for a in d.articles] == [("printer-jam", 2, 1)]
