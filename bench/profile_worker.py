"""Profile ``ticketd run`` under bench/intake.py's load with py-spy, and print the top entries.

Starts the daemon on SQLite with the shipped rules and acknowledgements, attaches
``py-spy record`` (raw format) to the worker process (``--process worker``, the default) or to
the daemon itself (``--process daemon``), sends a burst from 8 clients, then prints the top 10
functions by own time and the top 10 ``maild`` functions by inclusive time, idle waits left out.
Needs py-spy (``pip install py-spy``; attaching needs ptrace rights, e.g. root).

    .venv/bin/python bench/profile_worker.py [-n 1200] [--seconds 45] [--process daemon]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers.daemon import DaemonProcess, free_port  # noqa: E402

IDLE = ("select (", "wait (threading", "get (queue", "sleep")


def load_intake():
    """bench/intake.py as a module (bench/ itself is not put on sys.path: bench/http.py)."""
    spec = importlib.util.spec_from_file_location("bench_intake", ROOT / "bench" / "intake.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def top(raw: Path) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f]
        if not frames or frames[-1].startswith(IDLE):
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"busy samples: {total}")
    print("top 10 by own time:")
    for frame, n in own.most_common(10):
        print(f"  {100 * n / total:5.1f}%  {frame}")
    print("top 10 maild functions by inclusive time (below the loop):")
    skip = ("runpy", "<module>", "child_main", "run_once", "process_batch", "cli/")
    shown = [(f, n) for f, n in inclusive.most_common() if "maild/" in f]
    for frame, n in [(f, n) for f, n in shown if not any(s in f for s in skip)][:10]:
        print(f"  {100 * n / total:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=1200)
    parser.add_argument("--seconds", type=int, default=45)
    parser.add_argument("--process", choices=("worker", "daemon"), default="worker")
    args = parser.parse_args()
    intake = load_intake()
    tmp = Path(tempfile.mkdtemp(prefix="ticketd-profile-"))
    port = free_port()
    config = {
        "instance": {
            "ticket_prefix": "BENCH",
            "support_addresses": [intake.SUPPORT],
            "data_dir": "var",
        },
        "database": {"url": "sqlite:///var/ticketd.db"},
        "smtp_in": {"host": "127.0.0.1", "port": port},
        "smtp_out": {"transport": "file", "directory": "var/sent"},
        "notify": {"acknowledge": True},
        "loop": {"auto_replies_per_hour": 1000000},
        "rules_dir": str(tmp / "rules"),
        "templates_dir": str(ROOT / "templates"),
        "log_level": "warning",
    }
    shutil.copytree(ROOT / "rules", tmp / "rules")
    with (tmp / "config.yaml").open("w") as fh:
        YAML().dump(config, fh)
    daemon = DaemonProcess(tmp / "config.yaml", port, tmp / "daemon.log").start()
    raw = tmp / "profile.txt"
    try:
        assert daemon.proc is not None
        pid = daemon.proc.pid
        if args.process == "worker":
            deadline = time.monotonic() + 20
            while True:
                found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
                if found.stdout.split() or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            pid = int(found.stdout.split()[0])
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "50",
                "--duration",
                str(args.seconds),
                "--format",
                "raw",
                "--nonblocking",
                "-o",
                str(raw),
            ]
        )
        intake.send_all(port, intake.messages(args.n, "profile"), 8)
        spy.wait()
    finally:
        daemon.stop()
    top(raw)


if __name__ == "__main__":
    main()
