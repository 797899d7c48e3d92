"""Benchmark HTTP intake: ticketd's web form and API (real daemon, SQLite) against a bare aiohttp
handler that only answers 202, in the same run.

Sends N form submissions and N API submissions from 50 concurrent clients to each server and
prints, per kind: the acceptance rate (answers per second) and the p99 answer time of both, their
ratios, and ticketd's end-to-end rate (until every submission is stored as a ticket).

    .venv/bin/python bench/http.py [-n 1000] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

# This file is bench/http.py: run as a script, its folder comes first on sys.path and would
# shadow the standard library's ``http`` package that aiohttp imports. Put the project root there.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from tests.servers.daemon import free_port  # noqa: E402
from tests.servers.web import WebDaemon  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"


def bare_server() -> tuple[int, Callable[[], None]]:
    """A bare aiohttp server on its own thread: reads the body, answers 202."""

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"spool_id": 0}, status=202)

    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: list[web.AppRunner] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        application = web.Application()
        application.add_routes([web.post("/form", accept), web.post("/api/v1/messages", accept)])
        runner = web.AppRunner(application, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        runner_box.append(runner)
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait()

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return port, stop


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def blast(base: str, kind: str, n: int, clients: int, tag: str) -> tuple[float, float, int]:
    """(answers per second, p99 seconds, non-2xx count) for n submissions of ``kind``."""
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        token = ""
        if kind == "form":
            async with session.get(f"{base}/form") as resp:
                page = await resp.text()
            found = re.search(r'name="token" value="([^"]+)"', page)
            token = found.group(1) if found else ""
        latencies: list[float] = []
        failures = 0
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def client() -> None:
            nonlocal failures
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()
                if kind == "form":
                    data = {
                        "name": f"Customer {i}",
                        "email": f"{tag}{i}@bench.example",
                        "subject": f"Form question {i}",
                        "message": "Hello,\n" * 20,
                        "token": token,
                    }
                    request = session.post(
                        f"{base}/form", data=data, headers={"Accept": "application/json"}
                    )
                else:
                    body = {
                        "external_id": f"{tag}-{i}",
                        "from": {"email": f"{tag}{i}@bench.example", "name": f"Customer {i}"},
                        "subject": f"API question {i}",
                        "text": "Hello,\n" * 20,
                    }
                    request = session.post(
                        f"{base}/api/v1/messages",
                        data=json.dumps(body),
                        headers={
                            "Authorization": f"Bearer {TOKEN}",
                            "Content-Type": "application/json",
                        },
                    )
                async with request as resp:
                    await resp.read()
                    if resp.status != 202:
                        failures += 1
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return n / elapsed, p99(latencies), failures


def ticket_count(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute("SELECT COUNT(*) FROM ticket").fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="submissions per kind (form, API)")
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    os.environ["TICKETD_BENCH_TOKEN"] = TOKEN
    many = "100000000/day"
    with tempfile.TemporaryDirectory(prefix="ticketd-bench-http-") as tmp:
        daemon = WebDaemon(
            Path(tmp),
            http={
                "form_min_seconds": 0,
                "form_rate_per_ip": many,
                "form_rate_total": many,
                "api_rate_per_channel": many,
                "channels": [{"name": "bench", "token_env": "TICKETD_BENCH_TOKEN"}],
            },
            log_level="warning",
        ).start()
        bare_port, stop_bare = bare_server()
        db = Path(tmp) / "var" / "ticketd.db"
        try:
            print(f"{args.n} submissions per kind, {args.clients} concurrent clients")
            stored = 0
            for kind in ("form", "api"):
                bare = asyncio.run(
                    blast(
                        f"http://127.0.0.1:{bare_port}", kind, args.n, args.clients, f"bare{kind}"
                    )
                )
                began = time.perf_counter()
                ours = asyncio.run(blast(daemon.url(""), kind, args.n, args.clients, kind))
                stored += args.n - ours[2]
                while ticket_count(db) < stored:
                    time.sleep(0.05)
                end_to_end = args.n / (time.perf_counter() - began)
                print(
                    f"{kind:>4}: ticketd {ours[0]:7.1f}/s p99 {ours[1] * 1000:7.1f} ms "
                    f"({ours[2]} not 202) | bare aiohttp {bare[0]:7.1f}/s p99 {bare[1] * 1000:6.1f} ms "
                    f"| rate ratio {ours[0] / bare[0]:.2f}, p99 ratio {ours[1] / bare[1]:.1f}x "
                    f"| stored as tickets: {end_to_end:6.1f}/s"
                )
        finally:
            stop_bare()
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
