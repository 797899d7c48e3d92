"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from maild.intake.smtp import IntakeController
from tests.servers.daemon import free_port


@pytest.fixture
def smtp_server(app_factory, any_db_url):
    """SMTP intake on a free loopback port (SQLite and PostgreSQL): (app, port, spooled ids)."""
    port = free_port()
    app = app_factory(any_db_url, smtp_in={"port": port, "max_message_bytes": 200_000})
    spooled: list[int] = []
    controller = IntakeController(app, on_spooled=spooled.append)
    controller.start()
    try:
        yield app, port, spooled
    finally:
        controller.stop()
