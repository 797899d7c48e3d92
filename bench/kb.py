"""Benchmark knowledge-base search over 10,000 articles, on SQLite FTS5 and PostgreSQL.

    .venv/bin/python bench/kb.py [--articles 10000] [--queries 200] [--pg [ADMIN_DSN]]

Generates ``--articles`` Markdown files (a title, tags and about 150 words each, drawn from a
vocabulary of 2,000 words with a Zipf-like frequency so that common and rare words both occur),
indexes them through :class:`maild.kb.holder.KbHolder` as the daemon does, then times

- ``search``: a short query of two or three words, as ``ticketd kb search`` runs it;
- ``suggest``: a whole customer mail (subject and about 80 words), as the acknowledgement's
  suggestions run it (at most 40 distinct terms, ORed);

and prints the median and 95th percentile per query, and the time to index everything and to
re-index after one file changed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maild.app import App  # noqa: E402
from maild.config import load_config  # noqa: E402
from maild.kb.holder import KbHolder  # noqa: E402
from maild.kb.index import search  # noqa: E402
from maild.kb.suggest import suggestions  # noqa: E402


def vocabulary(rng: random.Random, size: int = 2000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(4, 10))))
    return sorted(words)


def pick(rng: random.Random, words: list[str], n: int) -> list[str]:
    # Zipf-like: index ~ size * u**3 favours the first words.
    return [words[int(len(words) * rng.random() ** 3)] for _ in range(n)]


def write_articles(folder: Path, count: int, words: list[str], rng: random.Random) -> None:
    folder.mkdir()
    for n in range(count):
        title = " ".join(pick(rng, words, 4)).capitalize()
        tags = pick(rng, words, 2)
        body = " ".join(pick(rng, words, 150))
        (folder / f"article-{n}.md").write_text(
            f"---\ntitle: {title}\ntags: [{', '.join(tags)}]\n---\n{body}\n"
        )


@contextlib.contextmanager
def postgres_db(admin_dsn: str) -> Iterator[str]:
    import psycopg

    name = f"ticketd_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(admin_dsn, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_dsn.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[int(len(values) * 0.95) - 1]
    return f"median {statistics.median(values) * 1000:6.2f} ms, p95 {p95 * 1000:6.2f} ms"


def run(url: str, folder: Path, kb: Path, words: list[str], args: argparse.Namespace) -> None:
    config = folder / "config.yaml"
    (folder / "rules").mkdir(exist_ok=True)
    config.write_text(
        json.dumps(
            {
                "instance": {
                    "ticket_prefix": "ACME",
                    "support_addresses": ["support@example.com"],
                    "data_dir": str(folder / "var"),
                },
                "database": {"url": url},
                "rules_dir": str(folder / "rules"),
                "templates_dir": str(ROOT / "templates"),
                "kb_dir": str(kb),
            }
        )
    )
    app = App.open(load_config(config))
    holder = KbHolder(app.db, kb)
    start = time.perf_counter()
    holder.maybe_reload()
    print(f"  indexed {holder.count:,} articles in {time.perf_counter() - start:.1f} s")
    changed = kb / "article-7.md"
    changed.write_text(changed.read_text() + "\nOne more line.\n")
    start = time.perf_counter()
    holder.maybe_reload()
    print(f"  re-indexed after one file changed in {(time.perf_counter() - start) * 1000:.0f} ms")
    rng = random.Random(2)
    queries = [" ".join(pick(rng, words, rng.randint(2, 3))) for _ in range(args.queries)]
    mails = [
        (" ".join(pick(rng, words, 5)), " ".join(pick(rng, words, 80))) for _ in range(args.queries)
    ]
    for q in queries[:10]:  # warm the caches
        search(app.db, q)
    times, hits = [], 0
    for q in queries:
        t = time.perf_counter()
        hits += len(search(app.db, q, limit=10))
        times.append(time.perf_counter() - t)
    print(f"  search  (2-3 words, top 10):   {ms(times)}; {hits / len(queries):.1f} hits/query")
    times, suggested = [], 0
    for subject, body in mails:
        t = time.perf_counter()
        suggested += len(suggestions(app.db, app.config.kb, subject, body))
        times.append(time.perf_counter() - t)
    print(f"  suggest (a whole mail, top 3): {ms(times)}; {suggested / len(mails):.1f} suggested")
    app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--pg",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/test",
        metavar="ADMIN_DSN",
        help="also on PostgreSQL (a private database)",
    )
    args = parser.parse_args()
    rng = random.Random(1)
    words = vocabulary(rng)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kb = folder / "kb"
        write_articles(kb, args.articles, words, rng)
        print(f"== SQLite FTS5 ({args.articles:,} articles)")
        (folder / "sqlite").mkdir()
        run(f"sqlite:///{folder / 'sqlite' / 'bench.db'}", folder / "sqlite", kb, words, args)
        if args.pg:
            print(f"== PostgreSQL full text ({args.articles:,} articles)")
            (folder / "pg").mkdir()
            with postgres_db(args.pg) as url:
                run(url, folder / "pg", kb, words, args)


if __name__ == "__main__":
    main()
