"""Turning any text (a search box, a whole customer mail) into query terms that are safe.

Only runs of letters and digits survive: FTS5's and ``to_tsquery``'s syntax characters (``"``,
``*``, ``-``, ``:``, ``(``, ``&``, ``|``, ``!``) are separators here, and the operators ``AND``,
``OR``, ``NOT`` and ``NEAR`` become ordinary words, quoted on SQLite (``"near"``), so no input can
change the shape of the query. Common words are dropped, each term counts once, at most MAX_TERMS
(the first ones: the subject comes first).
"""

from __future__ import annotations

import regex

MAX_TERMS = 40
MIN_CHARS = 2
MAX_CHARS = 40  # longer runs are not words (hashes, base64)
_WORD = regex.compile(r"[\p{L}\p{N}]+")
STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "hello",
        "hi",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "please",
        "regards",
        "so",
        "than",
        "thanks",
        "thank",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "re",
        "fwd",
        "aw",
        "wg",
        "best",
        "kind",
        "dear",
    ]
)


def terms(text: str) -> list[str]:
    """The distinct search words of ``text``, lower-cased, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text[:20_000]):
        word = match.group().lower()
        if MIN_CHARS <= len(word) <= MAX_CHARS and word not in STOP and not word.isdigit():
            seen.setdefault(word, None)
            if len(seen) >= MAX_TERMS:
                break
    return list(seen)


def fts5_query(words: list[str]) -> str:
    """``"printer" OR "fire"``: each term quoted (a phrase of one word), any may match."""
    return " OR ".join(f'"{w}"' for w in words)


def tsquery(words: list[str]) -> str:
    """``printer | fire`` for ``to_tsquery``: the words hold letters and digits only."""
    return " | ".join(words)
