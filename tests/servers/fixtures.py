"""The real servers as pytest fixtures: a capturing SMTP relay, Dovecot and ``ticketd run``.

Registered for every test by ``pytest_plugins`` in tests/conftest.py. Each fixture starts its
server on a free loopback port, waits until it answers, and stops it after the test (Dovecot after
the module: starting it costs a second). Tests that take ``dovecot`` get the ``dovecot`` marker and
tests on PostgreSQL the ``postgres`` marker (tests/conftest.py), so ``-m "not dovecot"`` or
``-m postgres`` select them. A missing Dovecot skips, or fails under CI=true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers.daemon import DaemonProcess
from tests.servers.dovecot import Dovecot, available
from tests.servers.receiver import Receiver
from tests.servers.relay import Relay

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback that verifies signatures (tests/servers/receiver.py)."""
    server = Receiver(WEBHOOK_SECRET).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A capturing SMTP relay on a free loopback port (see tests/servers/relay.py)."""
    with Relay() as server:
        yield server


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    """A private Dovecot IMAP server in a temp dir, shared by the tests of one module."""
    from tests.conftest import missing

    if not available():
        missing("Dovecot is not available (apt-get install -y dovecot-imapd; tests run as root)")
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start ``ticketd run --config CONFIG`` once it listens on ``port``; all stopped afterwards.

    ``start_daemon(config, port, log=None)``: the log defaults to ``daemon.log`` in tmp_path.
    A test that wants the exit status calls ``stop()`` itself; stopping twice is harmless.
    """
    started: list[DaemonProcess] = []

    def start(config: Path, port: int, log: Path | None = None) -> DaemonProcess:
        daemon = DaemonProcess(config, port, log or tmp_path / "daemon.log")
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        if daemon.proc is not None:
            daemon.stop()
