"""Knowledge-base pages against the daemon subprocess: the article page (escaped, 404 for an
unknown slug), the signed "that solved it" link (GET only asks, POST resolves as self-solved,
bad tokens 403), and both in a real headless Chromium at phone and desktop widths."""

from __future__ import annotations

import re
import smtplib
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kbkit import article, write_articles
from tests.mailgen import make_mail
from tests.servers.browser import horizontal_overflow, set_viewport
from tests.servers.web import WebDaemon, post_form, request, sent_mails

JAM = "The printer has a paper jam again, what can I do?"
TRICKY = "Open the cover.\n\n<b>not bold</b> {{ 7 * 7 }} <script>alert(1)</script>"


@pytest.fixture
def daemon(tmp_path: Path, any_db_url: str) -> Iterator[WebDaemon]:
    write_articles(tmp_path / "kb")
    (tmp_path / "kb" / "printer-jam.md").write_text(
        article("Clearing a paper jam in the printer", "[printer, hardware]", TRICKY)
    )
    running = WebDaemon(tmp_path, db_url=any_db_url, kb_dir=str(tmp_path / "kb")).start()
    yield running
    running.stop()


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def solved_link(daemon: WebDaemon, sender: str, subject: str) -> tuple[str, str]:
    """Write as ``sender``; the ticket's reference and the local path of its solved link."""
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=10) as client:
        client.sendmail(
            sender, ["support@example.com"], make_mail(sender=sender, subject=subject, body=JAM)
        )
    mail = wait_for(
        lambda: [m for m in sent_mails(daemon) if m["To"].addresses[0].addr_spec == sender]
    )[0]
    text = mail.get_body(("plain",)).get_content()
    found = re.search(r"That solved it\? (https?://\S+/kb/solved/(ACME-\d+)\?k=\S+)", text)
    assert found, text
    parts = urllib.parse.urlsplit(found.group(1))
    return found.group(2), f"{parts.path}?{parts.query}"


def test_the_article_page_shows_the_text_escaped_and_an_unknown_slug_is_404(
    daemon: WebDaemon,
) -> None:
    page = daemon.get("/kb/printer-jam")
    assert page.status == 200
    assert "Clearing a paper jam in the printer" in page.text
    assert (
        "&lt;b&gt;not bold&lt;/b&gt; {{ 7 * 7 }} &lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    )
    assert "<script>alert" not in page.text and "49" not in page.text
    assert daemon.get("/kb/no-such-article").status == 404
    assert daemon.get("/kb/..%2Fetc%2Fpasswd").status == 404


def test_the_solved_link_asks_first_and_resolves_on_the_button(daemon: WebDaemon) -> None:
    ref, path = solved_link(daemon, "dora@customer.example", "Jam at the office")
    page = daemon.get(path)
    assert page.status == 200 and 'id="solved-button"' in page.text
    assert daemon.ticket(ref)["status"] != "resolved"  # a GET (a mail scanner) changes nothing
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["k"][0]
    done = post_form(daemon.url(f"/kb/solved/{ref}"), {"k": token}, multipart=False)
    assert done.status == 200 and 'id="solved"' in done.text
    shown = daemon.ticket(ref)
    assert shown["status"] == "resolved"
    (event,) = [e for e in shown["events"] if e["action"] == "self_solved"]
    assert event["actor"] == "dora@customer.example"
    assert (event["detail"]["via"], event["detail"]["article"]) == ("link", "printer-jam")
    again = post_form(daemon.url(f"/kb/solved/{ref}"), {"k": token}, multipart=False)
    assert again.status == 200 and 'id="unchanged"' in again.text


def test_a_tampered_or_other_tickets_solved_token_is_refused(daemon: WebDaemon) -> None:
    ref, path = solved_link(daemon, "erin@customer.example", "Jam again")
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["k"][0]
    number = int(ref.split("-")[1])
    assert daemon.get(f"/kb/solved/{ref}?k={token[:-2]}xx").status == 403
    assert daemon.get(f"/kb/solved/ACME-{number + 1}?k={token}").status == 403
    status_token = request(daemon.url(f"/kb/solved/{ref}?k=")).status
    assert status_token == 403
    refused = post_form(daemon.url(f"/kb/solved/ACME-{number + 1}"), {"k": token}, multipart=False)
    assert refused.status == 403
    assert daemon.ticket(ref)["status"] != "resolved"


@pytest.mark.parametrize("width", (360, 1280))
def test_the_article_and_the_solved_page_in_a_browser(
    browser: Any, daemon: WebDaemon, width: int
) -> None:
    from selenium.webdriver.common.by import By

    set_viewport(browser, width)
    browser.get(daemon.url("/kb/printer-jam"))
    assert (
        browser.find_element(By.ID, "article-title").text == "Clearing a paper jam in the printer"
    )
    text = browser.find_element(By.ID, "article-text").text
    assert "<b>not bold</b> {{ 7 * 7 }} <script>alert(1)</script>" in text
    assert browser.find_elements(By.TAG_NAME, "b") == []
    assert horizontal_overflow(browser) == 0
    ref, path = solved_link(daemon, f"fay{width}@customer.example", f"Jam {width}")
    browser.get(daemon.url(path))
    browser.find_element(By.ID, "solved-button").click()
    wait_for(lambda: browser.find_elements(By.ID, "solved"))
    assert horizontal_overflow(browser) == 0
    assert daemon.ticket(ref)["status"] == "resolved"
