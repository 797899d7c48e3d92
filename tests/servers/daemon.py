"""Run ``ticketd run`` as a real subprocess on a free loopback port, with a readiness check.

Also the helpers of the tests that drive a daemon: a config file on a free port, the ``ticketd``
command line as a subprocess, and waiting on a condition.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ruamel.yaml import YAML


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, *, timeout: float = 20.0, proc: subprocess.Popen | None = None
) -> None:
    """Return once something accepts TCP connections on ``port``; fail if ``proc`` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def http_port(config: Path) -> int | None:
    """The HTTP port of a config file when its ``http.enabled`` is true, else None."""
    from maild.config import load_config

    http = load_config(config).http
    return http.port if http.enabled else None


class DaemonProcess:
    """``ticketd run --config CONFIG`` as a child process; ``start``/``stop``/``kill``.

    Ready means the SMTP port accepts connections and, when the config enables ``http``, the
    HTTP port too.
    """

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config = config
        self.port = port
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.http_port: int | None = None

    def start(self) -> DaemonProcess:
        self.http_port = http_port(self.config)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "maild.cli.main", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_for_port(self.port, proc=self.proc)
        if self.http_port:
            wait_for_port(self.http_port, proc=self.proc)
        return self

    def stop(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def write_config(tmp_path: Path, db_url: str | None = None) -> tuple[Path, int]:
    """A config.yaml for a daemon on a free SMTP port (SQLite in tmp_path unless ``db_url``)."""
    from tests.conftest import base_config  # not at the top: conftest loads this module

    port = free_port()
    url = db_url or f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}"
    data = base_config(
        tmp_path, url, smtp_in={"host": "127.0.0.1", "port": port}, worker={"poll_seconds": 0.2}
    )
    (tmp_path / "rules").mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    with path.open("w") as fh:
        YAML().dump(data, fh)
    return path, port


def ticketd(config: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met")


def tickets_json(config: Path) -> list[dict]:
    out = ticketd(config, "tickets", "list", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
