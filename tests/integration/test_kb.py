"""The knowledge base: articles read with file:line errors, indexed in SQLite FTS5 and
PostgreSQL full text, searched with the title weighted, queries that cannot be FTS syntax,
re-indexing when the folder changes, ``ticketd kb check|search|suggest``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maild.app import App
from maild.kb.articles import MAX_FILE_BYTES
from maild.kb.holder import KbHolder
from maild.kb.index import search
from tests.kbkit import ARTICLES, FILLER, article, ticketd, write_articles, write_config
from tests.kbkit import search as cli_search
from tests.mailgen import make_mail


@pytest.fixture
def config(any_db_url: str, tmp_path: Path) -> Path:
    write_articles(tmp_path / "kb")
    return write_config(tmp_path, any_db_url)


def test_search_ranks_a_title_match_above_a_match_in_the_text(config: Path) -> None:
    hits = cli_search(config, "printer")
    assert [h["slug"] for h in hits] == ["printer-jam", "invoice-copy"]
    assert 0 <= hits[1]["score"] < hits[0]["score"] <= 1
    assert set(hits[0]) == {"slug", "title", "score"}
    assert hits[0]["title"] == "Clearing a paper jam in the printer"


def test_stemming_finds_other_forms_of_a_word(config: Path) -> None:
    assert [h["slug"] for h in cli_search(config, "invoices")][:1] == ["invoice-copy"]


@pytest.mark.parametrize(
    "query",
    [
        '"printer',
        "printer*",
        "NEAR(printer jam)",
        "printer NEAR jam",
        "-printer",
        "printer -jam",
        "printer AND OR NOT",
        "title:printer",
        "printer & jam | !x (y)",
        "printer'; DROP TABLE kb_article; --",
    ],
)
def test_fts_syntax_in_a_query_is_taken_as_words(config: Path, query: str) -> None:
    hits = cli_search(config, query)
    assert hits and hits[0]["slug"] == "printer-jam"


def test_a_query_of_only_syntax_or_common_words_finds_nothing(config: Path) -> None:
    assert cli_search(config, '"*" - ( ) : ^ + ~') == []
    assert cli_search(config, "the and of") == []


def test_kb_check_reports_each_broken_file_with_its_line_and_the_others_stay_searchable(
    config: Path, tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    (kb / "no-front-matter.md").write_text("Just text, no front matter.\n")
    (kb / "unclosed.md").write_text("---\ntitle: Never closed\nprinter text\n")
    (kb / "bad-yaml.md").write_text("---\ntitle: ok\ntags: [a, b\n---\ntext\n")
    (kb / "unknown-key.md").write_text("---\ntitle: A title\nauthor: me\n---\ntext\n")
    (kb / "no-title.md").write_text("---\ntags: [printer]\n---\nprinter text\n")
    (kb / "huge.md").write_text(article("Huge printer", "[x]", "printer " * MAX_FILE_BYTES))
    (kb / "Bad Name.md").write_text(article("Bad name", "[x]", "text"))
    out = ticketd(config, "kb", "check")
    assert out.returncode == 1
    errors = out.stderr.splitlines()
    assert f"{kb / 'no-front-matter.md'}:1: expected front matter starting with a line '---'" in (
        errors
    )
    assert f"{kb / 'unclosed.md'}:1: the front matter has no closing line '---'" in errors
    assert any(e.startswith(f"{kb / 'bad-yaml.md'}:4: ") for e in errors), errors
    assert (
        f"{kb / 'unknown-key.md'}:3: unknown key 'author' (known: title, tags, team, language)"
        in (errors)
    )
    assert any(e.startswith(f"{kb / 'no-title.md'}:2: a title is required") for e in errors)
    assert any(e.startswith(f"{kb / 'huge.md'}:1: ") and "over the limit" in e for e in errors)
    assert any(e.startswith(f"{kb / 'Bad Name.md'}:1: ") for e in errors)
    assert errors[-1] == "7 files left out"
    assert len(errors) == 8
    assert out.stdout == f"{3 + len(FILLER)} articles in {kb}\n"
    assert [h["slug"] for h in cli_search(config, "printer")] == ["printer-jam", "invoice-copy"]


def test_the_index_follows_the_folder_edits_removals_and_broken_edits(
    app: App, tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    write_articles(kb)
    holder = KbHolder(app.db, kb)
    assert holder.maybe_reload() is True
    assert holder.maybe_reload() is False  # nothing changed
    assert [h.slug for h in search(app.db, "jam")] == ["printer-jam"]

    (kb / "printer-jam.md").write_text(article("Printer toner", "[printer]", "Replace toner."))
    (kb / "invoice-copy.md").unlink()
    (kb / "reset-password.md").write_text("---\ntitle: A\ntitle: B\n---\ntext\n")
    assert holder.maybe_reload() is True
    assert search(app.db, "jam") == []
    assert [h.slug for h in search(app.db, "toner")] == ["printer-jam"]
    assert search(app.db, "invoice") == []
    assert search(app.db, "password") == []  # a broken file is left out, not kept stale
    (error,) = holder.errors
    assert error.startswith(f"{kb / 'reset-password.md'}:3: ")
    assert holder.count == 1 + len(FILLER)


def test_kb_suggest_gives_what_fits_a_mail_and_nothing_for_an_unrelated_one(
    config: Path, tmp_path: Path
) -> None:
    jam = tmp_path / "jam.eml"
    jam.write_bytes(make_mail(subject="Paper jam", body="The printer has a paper jam again."))
    out = ticketd(config, "kb", "suggest", str(jam), "--json")
    assert out.returncode == 0, out.stderr
    assert [h["slug"] for h in json.loads(out.stdout)] == ["printer-jam"]
    other = tmp_path / "other.eml"
    other.write_bytes(make_mail(subject="Parcel", body="Where is my parcel? It left on Monday."))
    out = ticketd(config, "kb", "suggest", str(other))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("(nothing scores 0.6 or more")


def test_articles_of_another_team_are_not_suggested(config: Path, tmp_path: Path) -> None:
    (tmp_path / "kb" / "printer-jam.md").write_text(
        article(*ARTICLES["printer-jam"], extra="team: tech\n")
    )
    jam = tmp_path / "jam.eml"
    jam.write_bytes(make_mail(subject="Paper jam", body="The printer has a paper jam again."))
    for team, wanted in (("tech", ["printer-jam"]), ("billing", [])):
        out = ticketd(config, "kb", "suggest", str(jam), "--team", team, "--json")
        assert [h["slug"] for h in json.loads(out.stdout)] == wanted
