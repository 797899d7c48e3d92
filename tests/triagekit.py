"""Generated labelled tickets for the triage tests and ``bench/triage.py``: three teams, four
priorities and a few tags, each written in several ways with noise words, so that a model has to
learn words rather than whole sentences, with some label noise; a majority-class baseline is
clearly beaten."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

TOPICS: dict[str, list[tuple[str, str, list[str]]]] = {
    "billing": [
        ("invoice", "normal", ["invoice"]),
        ("refund", "high", ["refund"]),
        ("charged twice on my credit card", "urgent", ["refund", "payment"]),
        ("vat number on the invoice", "low", ["invoice"]),
        ("payment failed", "high", ["payment"]),
    ],
    "tech": [
        ("printer does not print", "normal", ["printer"]),
        ("server is down", "urgent", ["outage"]),
        ("login page shows an error", "high", ["login"]),
        ("password reset link expired", "normal", ["login"]),
        ("the app crashes on start", "high", ["crash"]),
    ],
    "sales": [
        ("quote for 50 licenses", "normal", ["quote"]),
        ("pricing for the enterprise plan", "low", ["pricing"]),
        ("demo next week", "low", ["demo"]),
        ("discount for a nonprofit", "normal", ["pricing"]),
    ],
}
OPENERS = ["Hello,", "Hi team,", "Good morning,", "Dear support,", "Hey,"]
FILLERS = [
    "I hope you can help.",
    "This started yesterday.",
    "Could you please have a look?",
    "We are a small company.",
    "It is quite important for us.",
    "Thanks in advance.",
    "My colleague noticed it first.",
]


def generate(count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    teams = list(TOPICS)
    for _ in range(count):
        team = rng.choices(teams, weights=[3, 5, 2])[0]
        topic, priority, tags = rng.choice(TOPICS[team])
        words = topic.split()
        if rng.random() < 0.2:
            rng.shuffle(words)
        text = " ".join(
            [
                rng.choice(OPENERS),
                f"about the {' '.join(words)}:",
                *rng.sample(FILLERS, 2),
                rng.choice(["Regards, Ann", "Best, Bo", "Cheers", ""]),
            ]
        )
        # Label noise, as in real histories: a tenth routed elsewhere, a fifth prioritised
        # otherwise, so that no model scores 1.0.
        if rng.random() < 0.1:
            team = rng.choice(teams)
        if rng.random() < 0.2:
            priority = rng.choice(["low", "normal", "high", "urgent"])
        rows.append({"text": text, "team": team, "priority": priority, "tags": tags})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
