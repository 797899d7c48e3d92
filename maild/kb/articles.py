"""Reading knowledge-base articles: ``kb_dir/SLUG.md``, YAML front matter, then Markdown.

::

    ---
    title: Resetting your password
    tags: [account, login]
    team: tech          # optional: suggested only on this team's tickets
    language: en        # optional, default en (the PostgreSQL text-search language)
    ---
    Open https://example.com/reset and ...

A file with a problem (no front matter, invalid YAML, a missing title, an unknown key, over
MAX_FILE_BYTES, a slug that is not lower-case letters, digits and dashes) is reported with
``file:line`` and left out; the other articles are still indexed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maild.yamlfile import YamlProblem, read_yaml_text

MAX_FILE_BYTES = 256 * 1024
MAX_TITLE_CHARS = 300
KEYS = ("title", "tags", "team", "language")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
LANGUAGE = re.compile(r"^[a-z]{2}$")


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    body: str
    tags: tuple[str, ...] = ()
    team: str | None = None
    language: str = "en"
    # The SHA-256 of the file's text (first 32 hex digits): the index rewrites an article only
    # when it changed, and instances on several machines agree on it whatever the file times.
    stamp: str = ""


class ArticleError(Exception):
    """One file's problem, as ``file:line: words``."""


def article_files(kb_dir: Path) -> list[Path]:
    """The ``*.md`` files of the folder, sorted (none when it does not exist)."""
    if not kb_dir.is_dir():
        return []
    return sorted(p for p in kb_dir.iterdir() if p.suffix == ".md" and p.is_file())


def stamp_of(path: Path) -> str:
    st = path.stat()
    return f"{st.st_mtime_ns}:{st.st_size}"


def read_article(path: Path) -> Article:
    """The article in ``path``; raise ArticleError with file:line for what is wrong with it."""
    name = str(path)
    stamp = stamp_of(path)
    size = int(stamp.split(":")[1])
    if size > MAX_FILE_BYTES:
        raise ArticleError(f"{name}:1: {size} bytes, over the limit of {MAX_FILE_BYTES}")
    slug = path.stem
    if not SLUG.match(slug):
        raise ArticleError(
            f"{name}:1: the file name {slug!r} is not a slug "
            "(lower-case letters, digits and dashes, e.g. reset-password.md)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleError(f"{name}:1: not UTF-8 text ({exc.reason})") from exc
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ArticleError(f"{name}:1: expected front matter starting with a line '---'")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ArticleError(f"{name}:1: the front matter has no closing line '---'") from None
    try:
        meta = read_yaml_text("\n".join(lines[1:end]) + "\n")
    except YamlProblem as exc:
        raise ArticleError(f"{name}:{exc.line + 1 if exc.line else 1}: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArticleError(f"{name}:2: the front matter must be a mapping (title: ...)")
    body = "\n".join(lines[end + 1 :]).strip()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return _article(name, slug, meta, body, digest)


def _line(meta: Any, key: str) -> int:
    from maild.routing.policies import line_of

    return line_of(meta, key) + 1  # the front matter starts on the file's line 2


def _article(name: str, slug: str, meta: dict[str, Any], body: str, stamp: str) -> Article:
    for key in meta:
        if key not in KEYS:
            raise ArticleError(
                f"{name}:{_line(meta, key)}: unknown key {key!r} (known: {', '.join(KEYS)})"
            )
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ArticleError(f"{name}:2: a title is required (title: Resetting your password)")
    if len(title) > MAX_TITLE_CHARS:
        raise ArticleError(f"{name}:{_line(meta, 'title')}: the title is over {MAX_TITLE_CHARS}")
    tags = meta.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        raise ArticleError(f"{name}:{_line(meta, 'tags')}: tags must be a list of words")
    team = meta.get("team")
    if team is not None and (not isinstance(team, str) or not team.strip()):
        raise ArticleError(f"{name}:{_line(meta, 'team')}: team must be a team's name")
    language = meta.get("language", "en")
    if not isinstance(language, str) or not LANGUAGE.match(language):
        raise ArticleError(
            f"{name}:{_line(meta, 'language')}: language must be a two-letter code such as en"
        )
    if not body:
        raise ArticleError(f"{name}:1: the article has no text after the front matter")
    return Article(
        slug=slug,
        title=title.strip(),
        body=body,
        tags=tuple(t.strip().lower() for t in tags),
        team=team.strip().lower() if team else None,
        language=language,
        stamp=stamp,
    )


Read = dict[str, tuple[str, Article | str]]  # file name -> (stamp, the article or its error)


def load_folder(
    kb_dir: Path, previous: Read | None = None
) -> tuple[list[Article], list[str], Read]:
    """Every readable article of the folder, one error line per file that is not, and what was
    read (pass it back as ``previous``: files whose stamp did not change are not read again)."""
    articles, errors = [], []
    done: Read = {}
    for path in article_files(kb_dir):
        try:
            stamp = stamp_of(path)
        except OSError as exc:
            errors.append(f"{path}:1: cannot read the file: {exc.strerror or exc}")
            continue
        known = (previous or {}).get(path.name)
        if known is not None and known[0] == stamp:
            result = known[1]
        else:
            try:
                result = read_article(path)
            except ArticleError as exc:
                result = str(exc)
            except OSError as exc:
                result = f"{path}:1: cannot read the file: {exc.strerror or exc}"
        done[path.name] = (stamp, result)
        if isinstance(result, Article):
            articles.append(result)
        else:
            errors.append(result)
    return articles, errors, done
