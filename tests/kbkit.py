"""Helpers for the knowledge-base tests: generated articles, a config file, ``ticketd`` runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.conftest import base_config

ARTICLES = {
    "reset-password": (
        "Resetting your password",
        "[account, login]",
        "Choose Forgot password on the login page; the reset link works for one hour.",
    ),
    "printer-jam": (
        "Clearing a paper jam in the printer",
        "[printer, hardware]",
        "Open the front cover, pull the jammed sheet out slowly, close the cover.",
    ),
    "invoice-copy": (
        "Downloading a copy of an invoice",
        "[billing]",
        "Every invoice is under Billing, Invoices, as a PDF. A printer friendly version exists.",
    ),
}
# Articles about other things, so that words have the weight they have in a real collection.
FILLER = {
    f"topic-{n}": (f"{topic.capitalize()} questions", f"[{topic}]", f"How {topic} works for you.")
    for n, topic in enumerate(["shipping", "returns", "warranty", "newsletter", "privacy"])
}


def article(title: str, tags: str, body: str, extra: str = "") -> str:
    return f"---\ntitle: {title}\ntags: {tags}\n{extra}---\n{body}\n"


def write_articles(kb: Path, articles: dict[str, tuple[str, str, str]] = ARTICLES) -> None:
    kb.mkdir(exist_ok=True)
    for slug, (title, tags, body) in {**articles, **FILLER}.items():
        (kb / f"{slug}.md").write_text(article(title, tags, body))


def write_config(tmp_path: Path, db_url: str, **overrides: Any) -> Path:
    path = tmp_path / "config.yaml"
    data = base_config(tmp_path, db_url, kb_dir=str(tmp_path / "kb"), **overrides)
    with path.open("w") as fh:
        YAML().dump(data, fh)
    return path


def ticketd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def search(config: Path, query: str) -> list[dict[str, Any]]:
    # The query after "--": one starting with "-" is a query, not an option.
    argv = ["kb", "search", "--json", "--config", str(config), "--", query]
    out = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
