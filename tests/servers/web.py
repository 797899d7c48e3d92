"""The daemon with its HTTP server on free loopback ports, and small HTTP client helpers.

``WebDaemon(tmp_path, **overrides).start()`` writes a config (SQLite in ``tmp_path`` unless
``db_url`` is given) with ``http.enabled`` and runs ``ticketd run`` as a subprocess; its
readiness check waits for the SMTP and the HTTP port. ``request()`` is a plain urllib client
that returns status, headers and body for every answer, errors included.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.conftest import base_config
from tests.servers.daemon import DaemonProcess, free_port


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def request(
    url: str,
    data: bytes | None = None,
    *,
    method: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Answer:
    """One HTTP request; 4xx/5xx answers are returned, not raised."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return Answer(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.headers, err.read())


class WebDaemon:
    """``ticketd run`` with ``http.enabled`` on free ports; ``url(path)`` addresses it."""

    def __init__(self, tmp: Path, db_url: str | None = None, **overrides: Any) -> None:
        self.tmp = tmp
        self.smtp_port = free_port()
        self.http_port = free_port()
        url = db_url or f"sqlite:///{tmp / 'var' / 'ticketd.db'}"
        http = {"enabled": True, "host": "127.0.0.1", "port": self.http_port}
        http.update(overrides.pop("http", {}))
        http.setdefault("public_url", f"http://127.0.0.1:{self.http_port}")
        data = base_config(
            tmp,
            url,
            smtp_in={"host": "127.0.0.1", "port": self.smtp_port},
            worker={"poll_seconds": 0.2, **overrides.pop("worker", {})},
            http=http,
            **overrides,
        )
        (tmp / "rules").mkdir(exist_ok=True)
        self.config = tmp / "config.yaml"
        with self.config.open("w") as fh:
            YAML().dump(data, fh)
        self.process = DaemonProcess(self.config, self.smtp_port, tmp / "daemon.log")

    def start(self) -> WebDaemon:
        self.process.start()
        return self

    def stop(self) -> int:
        return self.process.stop()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def get(self, path: str, **kwargs: Any) -> Answer:
        return request(self.url(path), **kwargs)

    def ticketd(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "maild.cli.main", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def tickets(self) -> list[dict]:
        out = self.ticketd("tickets", "list", "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def ticket(self, ref: str) -> dict:
        out = self.ticketd("tickets", "show", ref, "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


def form_token(page: str) -> str:
    """The hidden form token of a page served by ``GET /form``."""
    import re

    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found, "no form token on the page"
    return found.group(1)


def post_form(
    url: str,
    fields: dict[str, str],
    files: Sequence[tuple[str, str, bytes]] = (),
    *,
    headers: dict[str, str] | None = None,
    multipart: bool = True,
) -> Answer:
    """POST a form (multipart with ``files`` as (filename, content type, bytes), or urlencoded)
    with aiohttp's client; returns the answer whatever its status."""
    import asyncio

    import aiohttp

    async def send() -> Answer:
        if multipart:
            data: Any = aiohttp.FormData()
            for name, value in fields.items():
                data.add_field(name, value)
            for filename, ctype, content in files:
                data.add_field("attachments", content, filename=filename, content_type=ctype)
        else:
            data = fields
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=data, headers=headers or {}) as resp:
                return Answer(resp.status, resp.headers, await resp.read())  # type: ignore[arg-type]

    return asyncio.run(send())


def sent_mails(daemon: WebDaemon) -> list[Any]:
    """The daemon's outgoing mail (file transport), oldest first, parsed."""
    import email
    import email.policy

    files = sorted((daemon.tmp / "var" / "sent").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def status_link(mail: Any) -> str | None:
    """The ``/t/REF?k=...`` link in a mail's plain text, if any."""
    import re

    text = mail.get_body(("plain",)).get_content()
    found = re.search(r"https?://[^\s/]+/t/[A-Z0-9]+-\d+\?k=[A-Za-z0-9_.\-]+", text)
    return found.group(0) if found else None
