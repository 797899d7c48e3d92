"""Custom fields on the web form and the API, against the daemon subprocess (issue 20).

The fields the rules mark ``on_form`` / ``required_on_form`` appear on ``GET /form``, are checked
by their type with an error beside each field (the form shown again with the values), and end up
on the ticket like extracted values, where the rules see them; an API channel may send
``fields`` too. Real HTTP clients first, then the headless browser at phone and desktop widths.
"""

from __future__ import annotations

import json
import re
import smtplib
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.mailgen import make_mail
from tests.servers.browser import horizontal_overflow, set_viewport
from tests.servers.web import WebDaemon, form_token, post_form, request

TOKEN = "fields-chat-token-0123456789"
FIELDS = """\
fields:
  - {name: product, type: choice, values: [printer, scanner], label: Product, required_on_form: true}
  - {name: order, type: number, label: Order number, on_form: true,
     extract: {from: subject, pattern: 'order #?(?P<value>[0-9]{3,8})'}}
  - {name: due, type: date, label: Needed by, on_form: true}
  - {name: vip, type: bool, label: Under contract, on_form: true}
  - {name: email, type: text, label: Other address, on_form: true}
  - {name: internal, type: text}
"""
ROUTING = """\
rules:
  - name: Scanners
    when: {field.product: {equals: scanner}}
    then: {tags: [scanner]}
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDaemon]:
    tmp = tmp_path_factory.mktemp("form-fields")
    (tmp / "rules").mkdir()
    (tmp / "rules" / "10-fields.yaml").write_text(FIELDS)
    (tmp / "rules" / "20-routing.yaml").write_text(ROUTING)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TICKETD_TEST_FIELDS_TOKEN", TOKEN)
        http = {
            "form_min_seconds": 0,
            "form_rate_per_ip": "1000/hour",
            "channels": [{"name": "chat", "token_env": "TICKETD_TEST_FIELDS_TOKEN"}],
        }
        running = WebDaemon(tmp, http=http).start()
    yield running
    running.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def spool_count(daemon: WebDaemon) -> int:
    with sqlite3.connect(daemon.tmp / "var" / "ticketd.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM spool_entry").fetchone()[0])


def ticket_with(daemon: WebDaemon, subject: str) -> dict[str, Any]:
    found = wait_for(lambda: [t for t in daemon.tickets() if t["subject"] == subject])
    return daemon.ticket(found[0]["ref"])


def form(daemon: WebDaemon, subject: str, **custom: str) -> dict[str, str]:
    return {
        "name": "Carol Customer",
        "email": "carol@customer.example",
        "subject": subject,
        "message": "Hello, my device is broken.",
        "token": form_token(daemon.get("/form").text),
        **{f"field.{name}": value for name, value in custom.items()},
    }


def api(daemon: WebDaemon, body: dict[str, Any]) -> Any:
    return request(
        daemon.url("/api/v1/messages"),
        json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )


def test_the_form_shows_the_fields_marked_for_it_in_declared_order(daemon: WebDaemon) -> None:
    page = daemon.get("/form").text
    names = re.findall(r'name="field\.([a-z_]+)"', page)
    assert names == ["product", "order", "due", "vip", "email"]  # not "internal"
    product = re.search(r'<select id="field-product" name="field.product"([^>]*)>', page)
    assert product and "required" in product.group(1)
    assert '<option value="printer"' in page and '<option value="scanner"' in page
    assert re.search(r'<input type="date" id="field-due" name="field.due"', page)
    assert re.search(r'inputmode="decimal" id="field-order"', page)
    assert re.search(r'<select id="field-vip" name="field.vip"', page)
    assert '<label for="field-order">Order number' in page and "(optional)" in page
    # A field named like a built-in input does not clash with it.
    assert page.count('name="email"') == 1 and 'name="field.email"' in page


def test_form_values_are_checked_by_type_with_an_error_beside_each_field(
    daemon: WebDaemon,
) -> None:
    before = spool_count(daemon)
    answer = post_form(
        daemon.url("/form"),
        form(daemon, "Bad fields", product="fax", order="seven", due="2026-13-40", vip="maybe"),
    )
    assert answer.status == 400
    page = answer.text
    for field, text in (
        ("product", "Product: &#39;fax&#39; is not one of printer, scanner"),
        ("order", "Order number: &#39;seven&#39; is not a number"),
        ("due", "Needed by: &#39;2026-13-40&#39; is not a date (YYYY-MM-DD)"),
        ("vip", "Under contract: &#39;maybe&#39; is not true or false"),
    ):
        assert f'<p class="error field-error" id="field-{field}-error">{text}</p>' in page
        assert re.search(rf'id="field-{field}"[^>]*aria-invalid="true"', page), field
    assert 'value="seven"' in page and 'value="2026-13-40"' in page  # shown again
    assert 'value="Bad fields"' in page and "Hello, my device is broken." in page
    missing = post_form(daemon.url("/form"), form(daemon, "No product"))
    assert missing.status == 400 and "Product is required" in missing.text
    assert spool_count(daemon) == before  # nothing of it was spooled


def test_form_errors_are_json_by_field_for_json_clients(daemon: WebDaemon) -> None:
    answer = post_form(
        daemon.url("/form"),
        form(daemon, "JSON fields", product="printer", order="<b>1</b>"),
        headers={"Accept": "application/json"},
    )
    assert answer.status == 400
    body = answer.json()
    assert body["fields"] == {"order": "Order number: '<b>1</b>' is not a number"}
    assert "Order number" in body["error"]


def test_form_values_are_stored_on_the_ticket_and_the_rules_see_them(daemon: WebDaemon) -> None:
    subject = "Scanner order #12345 jams"
    answer = post_form(
        daemon.url("/form"),
        form(
            daemon,
            subject,
            product="Scanner",
            order="+0042.50",
            due="2026-12-24",
            vip="yes",
            email="  ",
        ),
    )
    assert answer.status == 200 and "Thank you" in answer.text
    ticket = ticket_with(daemon, subject)
    # Typed and stored like #set; the form's order wins over the one in the subject.
    assert ticket["fields"] == {
        "due": "2026-12-24",
        "order": "42.5",
        "product": "scanner",
        "vip": "true",
    }
    assert "scanner" in ticket["tags"]  # rule "Scanners" matched field.product
    changes = [e for e in ticket["events"] if e["action"] == "field"]
    assert {e["detail"]["name"] for e in changes} == {"due", "order", "product", "vip"}
    assert {e["actor"] for e in changes} == {"carol@customer.example"}
    assert {e["detail"]["via"] for e in changes} == {"web"}
    listed = daemon.ticketd("tickets", "list", "--field", "product=scanner", "--json")
    assert ticket["ref"] in [t["ref"] for t in json.loads(listed.stdout)]


def test_optional_fields_left_empty_store_nothing_and_extraction_still_fills_in(
    daemon: WebDaemon,
) -> None:
    subject = "Printer order #777 is late"
    answer = post_form(daemon.url("/form"), form(daemon, subject, product="printer"))
    assert answer.status == 200
    ticket = ticket_with(daemon, subject)
    assert ticket["fields"] == {"order": "777", "product": "printer"}
    actors = {e["detail"]["name"]: e["actor"] for e in ticket["events"] if e["action"] == "field"}
    assert actors == {"order": "extract", "product": "carol@customer.example"}


def test_the_fields_header_in_mail_is_not_believed(daemon: WebDaemon) -> None:
    subject = f"Forged fields {uuid.uuid4().hex[:6]}"
    raw = make_mail(
        subject=subject,
        sender="mallory@customer.example",
        headers={"X-Ticketd-Fields": '{"product": "scanner", "internal": "root"}'},
    )
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=10) as client:
        client.sendmail("mallory@customer.example", ["support@example.com"], raw)
    ticket = ticket_with(daemon, subject)
    assert ticket["fields"] == {} and "scanner" not in ticket["tags"]


def test_an_api_channel_sends_typed_fields_with_its_message(daemon: WebDaemon) -> None:
    answer = api(
        daemon,
        {
            "external_id": "chat-fields-1",
            "from": {"email": "erin@customer.example"},
            "subject": "Chat: scanner broken",
            "text": "It beeps.",
            "fields": {"product": "SCANNER", "order": 4471, "vip": False, "internal": "gold"},
        },
    )
    assert answer.status == 202, answer.text
    ticket = ticket_with(daemon, "Chat: scanner broken")
    assert ticket["fields"] == {
        "internal": "gold",  # any declared field, not only the form's
        "order": "4471",
        "product": "scanner",
        "vip": "false",
    }
    assert {e["detail"].get("via") for e in ticket["events"] if e["action"] == "field"} == {"api"}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"colour": "red"}, {"colour": "colour: no such field"}),
        ({"order": "seven"}, {"order": "order: 'seven' is not a number"}),
        ({"product": "fax"}, {"product": "product: 'fax' is not one of printer, scanner"}),
        ({"due": ["2026-01-01"]}, {"due": "due: a text, number or true/false value is required"}),
        ("product=printer", {"fields": "an object {name: value} is required"}),
    ],
)
def test_an_api_message_with_bad_fields_is_refused_by_field(
    daemon: WebDaemon, fields: Any, errors: dict[str, str]
) -> None:
    before = spool_count(daemon)
    answer = api(
        daemon,
        {
            "external_id": f"chat-bad-{uuid.uuid4().hex}",
            "from": {"email": "erin@customer.example"},
            "text": "Hi",
            "fields": fields,
        },
    )
    assert answer.status == 400
    body = answer.json()
    assert set(body["fields"]) == set(errors)
    for name, start in errors.items():
        assert body["fields"][name].startswith(start)
    assert spool_count(daemon) == before


# -- in the browser -------------------------------------------------------------------------------


def choose(browser: Any, element_id: str, text: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", element_id)).select_by_visible_text(text)


@pytest.mark.parametrize("width", (390, 1280))
def test_the_form_fields_are_filled_and_sent_in_a_browser(
    browser: Any, daemon: WebDaemon, width: int
) -> None:
    from selenium.webdriver.common.by import By

    set_viewport(browser, width)
    browser.get(daemon.url("/form"))
    assert horizontal_overflow(browser) == 0
    subject = f"Scanner at {width}px"
    browser.find_element(By.ID, "email").send_keys(f"dana{width}@customer.example")
    browser.find_element(By.ID, "subject").send_keys(subject)
    browser.find_element(By.ID, "message").send_keys("It does not scan.")
    choose(browser, "field-product", "scanner")
    browser.find_element(By.ID, "field-order").send_keys("4471")
    due = browser.find_element(By.ID, "field-due")
    assert due.get_attribute("type") == "date"  # the browser's date picker
    choose(browser, "field-vip", "Yes")
    browser.find_element(By.ID, "send").click()
    wait_for(lambda: browser.find_elements(By.ID, "thanks"))
    assert horizontal_overflow(browser) == 0
    ticket = ticket_with(daemon, subject)
    assert ticket["fields"] == {"order": "4471", "product": "scanner", "vip": "true"}


@pytest.mark.parametrize("width", (390, 1280))
def test_a_wrong_field_is_shown_again_with_its_error_in_a_browser(
    browser: Any, daemon: WebDaemon, width: int
) -> None:
    from selenium.webdriver.common.by import By

    set_viewport(browser, width)
    browser.get(daemon.url("/form"))
    browser.find_element(By.ID, "email").send_keys("dana@customer.example")
    browser.find_element(By.ID, "subject").send_keys("Wrong order number")
    browser.find_element(By.ID, "message").send_keys("See the order.")
    choose(browser, "field-product", "printer")
    browser.find_element(By.ID, "field-order").send_keys("<b>seven</b>")
    browser.find_element(By.ID, "send").click()
    error = wait_for(lambda: browser.find_elements(By.ID, "field-order-error"))[0]
    assert error.text == "Order number: '<b>seven</b>' is not a number"
    assert error.is_displayed()
    assert browser.find_element(By.ID, "field-order").get_attribute("value") == "<b>seven</b>"
    assert browser.find_element(By.ID, "field-order").get_attribute("aria-invalid") == "true"
    product = browser.find_element(By.ID, "field-product")
    assert product.get_attribute("value") == "printer"  # the other answers are kept
    assert browser.find_elements(By.TAG_NAME, "b") == []  # shown as text
    assert horizontal_overflow(browser) == 0
    browser.find_element(By.ID, "field-order").clear()
    browser.find_element(By.ID, "field-order").send_keys("7")
    browser.find_element(By.ID, "send").click()
    wait_for(lambda: browser.find_elements(By.ID, "thanks"))
