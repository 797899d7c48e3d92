"""The README's quick start, run exactly as written, so that it cannot drift from the code.

The ```sh blocks of the "Quick start" section are taken from README.md in order and run with bash
in a temporary copy of the repository's shipped files (config.yaml, rules/, templates/, scripts/,
pyproject.toml, with .venv linked to this test's virtualenv): ``scripts/run`` starts the real
daemon, swaks is the customer's and the agent's mail client. The one change made to them is the
port: 127.0.0.1:2525 becomes a free port (in the config copy and in the commands), and so does the
web server's 8025 in the config copy, so the test never collides with a daemon someone is running. Between blocks the test waits until the daemon has
processed the spool and delivered the outbox (a readiness check on the database, not a sleep).
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.servers.daemon import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("config.yaml", "rules", "templates", "scripts", "pyproject.toml")


def quick_start_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def test_the_quick_start_has_the_whole_loop() -> None:
    blocks = quick_start_blocks()
    install, run, *rest = blocks
    assert install.startswith("sudo apt-get install -y ") and "swaks" in install
    assert "dovecot" not in install  # only for IMAP, named in the text
    assert run.strip() == "scripts/run"
    joined = "\n".join(rest)
    for step in (
        "--to support@example.com",
        "var/sent",
        "REPLY_TO=$(",
        "#priority",
        "tickets show",
    ):
        assert step in joined


def wait_until_quiet(db: Path, timeout: float = 30.0) -> None:
    """Until nothing is pending in the spool and nothing queued in the outbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as con:
            busy = con.execute(
                "SELECT (SELECT COUNT(*) FROM spool_entry WHERE status = 'pending') + "
                "(SELECT COUNT(*) FROM outbox_entry WHERE status = 'queued')"
            ).fetchone()[0]
        if not busy:
            return
        time.sleep(0.05)
    raise TimeoutError("the daemon did not finish its work")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    if shutil.which("swaks") is None:
        missing("swaks is not installed (apt-get install swaks)")
    venv = Path(sys.prefix)
    if not (venv / ".ticketd-installed").exists():
        missing(f"{venv} was not set up by scripts/setup (no install stamp)")
    root = tmp_path / "ticketd"
    root.mkdir()
    for name in SHIPPED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name)
        else:
            shutil.copy(src, root / name)
    (root / ".venv").symlink_to(venv)
    return root


def test_the_readme_walkthrough_runs_as_written(checkout: Path) -> None:
    port, http_port = free_port(), free_port()
    config = checkout / "config.yaml"
    text = config.read_text().replace("port: 2525", f"port: {port}")
    config.write_text(text.replace("8025", str(http_port)))  # the web server's port too
    _install, run, *steps = quick_start_blocks()  # apt-get needs root: checked above, not run
    log = (checkout / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        ["bash", "-c", run], cwd=checkout, stdout=log, stderr=subprocess.STDOUT
    )
    outputs: list[str] = []
    try:
        wait_for_port(port, proc=daemon, timeout=60)
        for step in steps:
            script = step.replace("127.0.0.1:2525", f"127.0.0.1:{port}")
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", script],
                cwd=checkout,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, f"{step}\n{done.stdout}\n{done.stderr}"
            outputs.append(done.stdout)
            wait_until_quiet(checkout / "var" / "ticketd.db")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        log.close()
    daemon_log = (checkout / "daemon.log").read_text(errors="replace")
    assert "Traceback" not in daemon_log and "WARNING" not in daemon_log, daemon_log

    customer, notified, answer, last = outputs
    copy, shown = last.split("\nACME-1  Printer on fire\n", 1)  # the file, then tickets show
    assert "250" in customer  # swaks: the message was accepted
    # The agent's notification is in var/sent, with the ticket's state and Carol's words.
    assert "ACME-1 is now assigned to you" in notified and "my printer is on fire" in notified
    assert "Reply-To: Example Support <support+ACME-1." in notified
    # Carol's copy: Bob's text under his name, without the command, signed once.
    assert "From: Bob <support@example.com>" in copy and "To: carol@customer.test" in copy
    part = email.message_from_string(copy, policy=email.policy.default).get_body(("plain",))
    assert part is not None
    body = part.get_content()  # the text as Carol's mail client shows it (transfer-decoded)
    assert "a technician is on the way" in body and "#priority" not in body
    assert body.count("\nBob\n") == 1 and body.count("\n-- \n") == 1
    # tickets show: the command ran and the shipped rules moved the ticket on.
    assert "status pending  priority urgent  team tech  assignee bob@example.com" in shown
    assert '"commands": ["#priority urgent"]' in shown and "250" in answer
