"""``GET /dashboard``: basic auth against scrypt hashes, the queue, SLA risks, volumes, charts."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from maild import spool
from maild.app import App
from maild.config import config_from_dict
from maild.errors import ConfigError
from maild.ops.passwords import hash_password, verify_password
from maild.store.db import write_tx
from maild.store.models import Ticket
from maild.web.server import WebServer
from maild.worker import make_worker
from tests.conftest import base_config
from tests.mailgen import make_mail
from tests.servers.browser import horizontal_overflow, set_viewport
from tests.servers.daemon import free_port
from tests.servers.web import request

PASSWORD = "correct horse battery"


def auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def dashboard(app_factory: Callable[..., App]) -> Iterator[tuple[App, int]]:
    users = {"lead": hash_password(PASSWORD)}
    app = app_factory(http={"enabled": True, "port": free_port(), "dashboard_users": users})
    for n, subject in enumerate(["Printer on fire", "Invoice <b>wrong</b>", "Login"]):
        spool.enqueue(
            app.db, make_mail(subject=subject, sender=f"c{n}@customer.test"), source="smtp"
        )
    make_worker(app).run_once()
    first, second = Ticket.select().order_by(Ticket.id)[:2]
    soon = app.clock.now() + dt.timedelta(hours=1)
    with write_tx(app.db):
        Ticket.update(team="billing", first_response_due=soon).where(
            Ticket.id == first.id
        ).execute()
        Ticket.update(resolution_due=soon).where(Ticket.id == second.id).execute()
    server = WebServer(app)
    server.start()
    try:
        yield app, server.port
    finally:
        server.stop()


def test_passwords_are_salted_scrypt_hashes() -> None:
    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one != two and one.startswith("scrypt$") and PASSWORD not in one
    assert verify_password(PASSWORD, one) and not verify_password("wrong", one)
    assert not verify_password(PASSWORD, "plain-text") and not verify_password(
        PASSWORD, "scrypt$1$x$y$z$w"
    )


def test_a_plain_password_in_the_config_is_refused(tmp_path) -> None:
    data = base_config(
        tmp_path, f"sqlite:///{tmp_path / 'db'}", http={"dashboard_users": {"lead": "hunter2"}}
    )
    with pytest.raises(ConfigError, match="not a password hash"):
        config_from_dict(data, base_dir=tmp_path)


def test_ticketd_passwd_prints_a_hash_that_verifies() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", "passwd", "lead"],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    user, _, stored = done.stdout.strip().partition(": ")
    assert user == "lead" and verify_password(PASSWORD, stored.strip('"'))
    short = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", "passwd", "lead"],
        input="short\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert short.returncode == 1 and "at least" in short.stderr


def test_the_dashboard_needs_a_known_user_and_the_right_password(dashboard) -> None:
    _, port = dashboard
    url = f"http://127.0.0.1:{port}/dashboard"
    for headers in (
        {},
        auth("lead", "wrong"),
        auth("nobody", PASSWORD),
        {"Authorization": "Basic !!"},
    ):
        answer = request(url, headers=headers)
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic ")
        assert "Printer" not in answer.text
    page = request(url, headers=auth("lead", PASSWORD))
    assert page.status == 200
    assert page.headers["Refresh"] == "60"
    assert "<script" not in page.text
    assert "Invoice &lt;b&gt;wrong&lt;/b&gt;" in page.text  # subjects come from mail: escaped


def test_the_dashboard_in_a_browser_at_phone_and_desktop_width(browser: Any, dashboard) -> None:
    _, port = dashboard
    for width in (360, 1280):
        set_viewport(browser, width)
        browser.get(f"http://lead:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{port}/dashboard")
        text = browser.find_element("tag name", "body").text
        assert "Dashboard" in text
        assert browser.find_element("id", "today-created").text == "3"
        risk = browser.find_element("id", "at-risk").text
        assert "ACME-1" in risk and "Printer on fire" in risk and "in 0 h" in risk
        queue = browser.find_element("id", "queue").text
        assert "billing" in queue and "(unassigned)" in queue
        assert browser.find_elements("css selector", "svg.chart")
        assert horizontal_overflow(browser) == 0
