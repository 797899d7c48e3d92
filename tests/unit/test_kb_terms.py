"""Queries are reduced to words: no text, however it is written, is FTS5 or tsquery syntax."""

from __future__ import annotations

import sqlite3
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from maild.kb.terms import MAX_TERMS, fts5_query, terms, tsquery


def fts() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize = 'porter unicode61')")
    db.execute("INSERT INTO t VALUES ('near the printer', 'AND OR NOT NEAR * - \"')")
    return db


def test_operators_and_syntax_become_words_or_separators() -> None:
    assert terms('"printer* NEAR(jam) -fire title:x AND (a|b)&!c') == [
        "printer",
        "near",
        "jam",
        "fire",
        "title",
    ]  # "and" is a common word: dropped like "the"
    assert fts5_query(["near", "and"]) == '"near" OR "and"'
    assert tsquery(["printer", "jam"]) == "printer | jam"


def test_at_most_max_terms_each_once_in_order() -> None:
    words = [f"w{n}x" for n in range(MAX_TERMS + 10)]
    assert terms(" ".join(words + words)) == words[:MAX_TERMS]


@settings(deadline=None, derandomize=True, max_examples=300)
@given(st.text(max_size=200))
def test_any_text_gives_a_query_sqlite_accepts(text: str) -> None:
    db = fts()
    words = terms(text)
    if words:
        db.execute("SELECT rowid FROM t WHERE t MATCH ?", (fts5_query(words),)).fetchall()
    assert not any(c in string.punctuation or c.isspace() for w in words for c in w)
