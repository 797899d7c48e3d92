"""The web pages in a real headless Chromium: the form filled and sent at phone and desktop
widths, without sideways scrolling, with JavaScript no page needs, and the CSP obeyed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.browser import horizontal_overflow, set_viewport
from tests.servers.web import WebDaemon

WIDTHS = (360, 390, 1280)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[WebDaemon]:
    running = WebDaemon(tmp_path, http={"form_min_seconds": 0}).start()
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


def text_of(browser: Any, element_id: str) -> str:
    """The element's text, or "" while the page is being replaced."""
    from selenium.common.exceptions import WebDriverException

    try:
        found = browser.find_elements("id", element_id)
        return found[0].text if found else ""
    except WebDriverException:
        return ""


def console_errors(browser: Any) -> list[str]:
    try:
        return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    except Exception:  # not every driver keeps the log
        return []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_form_is_filled_and_sent_in_a_browser(
    browser: Any, daemon: WebDaemon, tmp_path: Path, width: int
) -> None:
    from selenium.webdriver.common.by import By

    console_errors(browser)  # drop what earlier tests left in the log
    set_viewport(browser, width)
    browser.get(daemon.url("/form"))
    assert horizontal_overflow(browser) == 0
    assert browser.find_element(By.ID, "website").is_displayed() is False  # the honeypot
    attachment = tmp_path / f"screenshot-{width}.txt"
    attachment.write_text("error 42")
    browser.find_element(By.ID, "name").send_keys("Dana <b>Bold</b>")
    browser.find_element(By.ID, "email").send_keys(f"dana{width}@customer.example")
    browser.find_element(By.ID, "subject").send_keys(f"Cannot log in at {width}px")
    browser.find_element(By.ID, "message").send_keys("Hello,\nthe login page says 'error 42'.")
    browser.find_element(By.ID, "attachments").send_keys(str(attachment))
    browser.find_element(By.ID, "send").click()
    wait_for(lambda: browser.find_elements(By.ID, "thanks"))
    assert horizontal_overflow(browser) == 0
    assert f"dana{width}@customer.example" in browser.page_source
    assert console_errors(browser) == []
    ticket = wait_for(
        lambda: [t for t in daemon.tickets() if t["subject"] == f"Cannot log in at {width}px"]
    )[0]
    shown = daemon.ticket(ticket["ref"])
    assert shown["messages"][0]["from"] == f"dana{width}@customer.example"
    assert shown["messages"][0]["attachments"][0]["filename"] == attachment.name


def test_an_invalid_address_is_shown_again_escaped_in_the_browser(
    browser: Any, daemon: WebDaemon
) -> None:
    from selenium.webdriver.common.by import By

    set_viewport(browser, 360)
    browser.get(daemon.url("/form"))
    # The browser's own check would stop "not-an-address"; an address that passes it but not
    # email-validator reaches the server.
    browser.find_element(By.ID, "email").send_keys("x@localhost")
    browser.find_element(By.ID, "subject").send_keys("<script>alert(1)</script>")
    browser.find_element(By.ID, "message").send_keys("hi")
    browser.find_element(By.ID, "send").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".errors"))
    value = browser.find_element(By.ID, "subject").get_attribute("value")
    assert value == "<script>alert(1)</script>"  # kept, as text
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert horizontal_overflow(browser) == 0


@pytest.mark.parametrize("width", (360, 390, 1280))
def test_a_status_link_opens_replies_and_solves_in_a_browser(
    browser: Any, daemon: WebDaemon, width: int
) -> None:
    import smtplib
    import urllib.parse

    from selenium.webdriver.common.by import By

    from tests.mailgen import make_mail
    from tests.servers.web import sent_mails, status_link

    sender = f"erin{width}@customer.example"
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=10) as client:
        client.sendmail(
            sender,
            ["support@example.com"],
            make_mail(sender=f"Erin <{sender}>", subject=f"Phone width {width}"),
        )
    mail = wait_for(
        lambda: [m for m in sent_mails(daemon) if m["To"].addresses[0].addr_spec == sender]
    )[0]
    link = status_link(mail)
    assert link
    parts = urllib.parse.urlsplit(link)
    console_errors(browser)  # drop what earlier tests left in the log
    set_viewport(browser, width)
    browser.get(daemon.url(f"{parts.path}?{parts.query}"))
    assert browser.find_element(By.ID, "subject").text == f"Phone width {width}"
    assert horizontal_overflow(browser) == 0
    browser.find_element(By.ID, "text").send_keys("Here is more: the LED blinks red.")
    browser.find_element(By.ID, "send-reply").click()
    wait_for(lambda: browser.find_elements(By.ID, "notice"))
    assert horizontal_overflow(browser) == 0
    ref = browser.find_element(By.ID, "ref").text
    wait_for(
        lambda: any(m["body"].startswith("Here is more") for m in daemon.ticket(ref)["messages"])
    )
    browser.refresh()
    assert "the LED blinks red" in browser.find_element(By.ID, "thread").text
    browser.find_element(By.ID, "solve").click()
    wait_for(lambda: text_of(browser, "status") == "resolved")
    assert browser.find_elements(By.ID, "reopen")
    assert horizontal_overflow(browser) == 0
    assert console_errors(browser) == []
