"""Webhooks in ``ticketd run``: a missing secret stops the start, ``kill -9`` loses no event."""

from __future__ import annotations

import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.mailgen import make_mail
from tests.servers.daemon import DaemonProcess, ticketd, wait_until, write_config
from tests.servers.fixtures import WEBHOOK_SECRET
from tests.webhookkit import SECRET_ENV, hook


def with_hooks(config: Path, *hooks: dict) -> None:
    yaml = YAML()
    data = yaml.load(config.read_text())
    data["webhooks"] = list(hooks)
    data["webhook_delivery"] = {"first_retry_seconds": 0.1, "max_retry_seconds": 0.5}
    with config.open("w") as fh:
        yaml.dump(data, fh)


def test_a_hook_with_a_missing_secret_stops_the_daemon_with_exit_78(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    config, _port = write_config(tmp_path)
    with_hooks(config, hook("https://crm.example.com/in"))
    out = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 78
    assert f"webhooks[0].secret_env: environment variable {SECRET_ENV} is not set" in out.stderr
    assert "Traceback" not in out.stderr


def test_kill_9_of_the_daemon_loses_no_event(tmp_path, monkeypatch, receiver):
    monkeypatch.setenv(SECRET_ENV, WEBHOOK_SECRET)
    config, port = write_config(tmp_path)
    with_hooks(config, hook(receiver.url, events=["ticket.created"], max_attempts=100))
    receiver.answer("down")
    daemon = DaemonProcess(config, port, tmp_path / "daemon.log").start()
    for n in range(5):
        out = ticketd(
            config,
            "inject",
            stdin=make_mail(subject=f"Ticket {n}", message_id=f"<k{n}@customer.test>"),
        )
        assert out.returncode == 0, out.stderr
    listed = ticketd(config, "webhooks", "list", "--json")
    assert listed.returncode == 0
    daemon.kill()  # SIGKILL while the receiver is down: the events wait in the database
    receiver.answer("ok")
    daemon = DaemonProcess(config, port, tmp_path / "daemon.log").start()
    try:
        got = receiver.wait_for(5, timeout=60)
    finally:
        daemon.stop()
    subjects = sorted(r.payload["ticket"]["subject"] for r in got)
    assert subjects == [f"Ticket {n}" for n in range(5)]
    assert len({r.webhook_id for r in got}) == 5
    wait_until(lambda: b"nothing queued or failed" in ticketd(config, "webhooks", "list").stdout)


@pytest.mark.parametrize("args", [["webhooks", "retry", "99"], ["webhooks", "test", "nope"]])
def test_the_cli_names_what_is_missing(tmp_path, args):
    config, _port = write_config(tmp_path)
    out = ticketd(config, *args)
    assert out.returncode != 0 and b"Traceback" not in out.stderr
    assert b"no webhook" in out.stderr


def test_a_hanging_receiver_slows_neither_the_tickets_nor_their_mail(
    tmp_path, monkeypatch, receiver
):
    monkeypatch.setenv(SECRET_ENV, WEBHOOK_SECRET)
    config, port = write_config(tmp_path)
    with_hooks(config, hook(receiver.url, events=["ticket.created"], timeout_seconds=45))
    receiver.answer("hang")  # every post waits until the test says "ok"
    sent = tmp_path / "var" / "sent"
    daemon = DaemonProcess(config, port, tmp_path / "daemon.log").start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            for n in range(8):
                mail = make_mail(subject=f"Hang {n}", message_id=f"<h{n}@customer.test>")
                smtp.sendmail("carol@customer.test", ["support@example.com"], mail)
        # Every ticket is stored and acknowledged while all the posts still hang.
        wait_until(lambda: sent.is_dir() and len(list(sent.glob("*.eml"))) >= 8)
        wait_until(lambda: receiver.hanging > 0)
        assert receiver.received == []
        receiver.answer("ok")
        got = receiver.wait_for(8, timeout=60)
    finally:
        daemon.stop()
    assert sorted(r.payload["ticket"]["subject"] for r in got) == [f"Hang {n}" for n in range(8)]
