"""The browser fixture renders a local page at phone width without sideways scrolling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.servers.browser import horizontal_overflow, set_viewport


def test_a_local_page_renders_at_phone_width(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(
        "<!doctype html><meta name=viewport content='width=device-width'>"
        "<h1 id=t>Hello &amp; welcome</h1><div style='width:2000px'>wide</div>"
    )
    set_viewport(browser, 390)
    browser.get(page.as_uri())
    assert browser.find_element("id", "t").text == "Hello & welcome"
    assert horizontal_overflow(browser) > 1000  # the wide block is seen, so the check can fail
