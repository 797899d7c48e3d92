"""Reading one YAML file safely and fast: YAML text to mappings and lists that know their lines.

Used for the rules files (``maild.routing.loader``) and, as the fast path, for config.yaml
(``maild.config``, which reads a file this refuses with ruamel's own round-trip loader).

Policy for a file the daemon reads while running: at most MAX_FILE_BYTES; anchors, aliases and
explicit tags are refused (aliases are how "billion laughs" documents expand, and rules never need
them); nesting deeper than MAX_YAML_DEPTH is refused as the events arrive, before anything deeper
is built; duplicate keys and tabs in indentation are reported in plain words, each with its line.

Speed: ruamel.yaml's pure-Python scanner and composer took about 1 ms per rule. Here the events
come from ruamel's C parser (``ruamel.yaml.clib``); a file it refuses (libyaml is YAML 1.1 and
stricter, e.g. about ``{mon-fri: 09:00-17:00}``) is read again by ruamel's pure-Python parser, so
what loaded before still loads. One loop builds ruamel's ``CommentedMap``/``CommentedSeq`` with their line
records straight from the events, so :func:`maild.routing.policies.line_of` works unchanged. Plain
scalars are resolved by ruamel's YAML 1.2 resolver and constructor (``NO`` stays a string), so
values are exactly what ``YAML(typ="rt")`` gives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import Reader
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scanner import RoundTripScanner

try:  # the C parser: about ten times faster than the pure-Python one
    from _ruamel_yaml import CParser as _CParser  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - ruamel.yaml.clib is a dependency
    _CParser = None

MAX_FILE_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 40
STR_TAG = "tag:yaml.org,2002:str"

_DUPLICATE = re.compile(r'found duplicate key "(.*?)"')


class YamlProblem(Exception):
    """One reason a file could not be read: its 1-based line (0: unknown) and the words."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_yaml_file(path: Path) -> Any:
    """The file's data; raises YamlProblem (size, encoding, syntax, refused constructs)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise YamlProblem(0, f"larger than {MAX_FILE_BYTES} bytes; split it up")
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlProblem(0, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlProblem(raw[: exc.start].count(b"\n") + 1, "not UTF-8 text") from None
    return read_yaml_text(text)


def read_yaml_text(text: str) -> Any:
    """The data of one YAML document (None when empty); raises YamlProblem."""
    if _CParser is not None:
        try:
            return _Builder(_CParser(text)).document()
        except YamlProblem:
            raise
        except YAMLError:
            pass  # libyaml is YAML 1.1 and stricter (``{a: 09:00}``): ask the pure parser
    try:
        return _Builder(_pure_parser(text)).document()
    except YamlProblem:
        raise
    except MarkedYAMLError as exc:
        raise YamlProblem(*_yaml_problem(exc, text.splitlines())) from None
    except YAMLError as exc:
        raise YamlProblem(0, f"invalid YAML: {exc}") from None


def _pure_parser(text: str) -> Any:
    """ruamel's pure-Python parser: YAML 1.2 as ``YAML(typ="rt")`` reads it, but slow."""
    yaml = YAML(typ="rt", pure=True)
    yaml.Reader = Reader
    yaml.Scanner = yaml.Scanner or RoundTripScanner
    yaml.reader.stream = text
    return yaml.parser


class _Scalars(RoundTripConstructor):
    """ruamel's round-trip constructor and YAML 1.2 resolver, for plain scalars only."""

    def __init__(self) -> None:
        self.versioned = VersionedResolver(version=(1, 2))
        self._resolver = self.versioned  # what ruamel's constructor asks its loader for
        self.comment_handling = None
        super().__init__(loader=self)

    def value(self, event: ScalarEvent) -> Any:
        if not event.implicit[0]:  # quoted: always a string
            return event.value
        tag = self.versioned.resolve(ScalarNode, event.value, (True, False))
        if str(tag) == STR_TAG:
            return event.value
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        return self.construct_object(node, deep=True)


class _Builder:
    """Builds the document from the parser's events, refusing what rules files may not use."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.scalars = _Scalars()

    def document(self) -> Any:
        parser = self.parser
        parser.get_event()  # stream start
        if parser.check_event(StreamEndEvent):
            return None
        parser.get_event()  # document start
        data = self.node(1)
        parser.get_event()  # document end
        if not parser.check_event(StreamEndEvent):
            event = parser.get_event()
            raise YamlProblem(
                event.start_mark.line + 1, "one document per file (found a second '---')"
            )
        return data

    def node(self, depth: int) -> Any:
        event = self.parser.get_event()
        mark = event.start_mark
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
            raise YamlProblem(
                mark.line + 1,
                "YAML anchors and aliases (&name, *name) are not allowed "
                "in rules files: write the value out",
            )
        tag = getattr(event, "tag", None)
        if tag and str(tag) != "!":
            raise YamlProblem(mark.line + 1, f"YAML tags ({tag}) are not allowed in rules files")
        if depth > MAX_YAML_DEPTH:
            raise YamlProblem(mark.line + 1, f"nested deeper than {MAX_YAML_DEPTH} levels")
        if isinstance(event, ScalarEvent):
            return self.scalars.value(event)
        if isinstance(event, SequenceStartEvent):
            return self.sequence(event, depth)
        if isinstance(event, MappingStartEvent):
            return self.mapping(event, depth)
        raise YamlProblem(mark.line + 1, f"invalid YAML: unexpected {type(event).__name__}")

    def sequence(self, start: Any, depth: int) -> CommentedSeq:
        seq = CommentedSeq()
        seq._yaml_set_line_col(start.start_mark.line, start.start_mark.column)
        parser = self.parser
        index = 0
        while not parser.check_event(SequenceEndEvent):
            mark = parser.peek_event().start_mark
            seq.append(self.node(depth + 1))
            seq.lc.add_kv_line_col(index, [mark.line, mark.column])
            index += 1
        parser.get_event()
        return seq

    def mapping(self, start: Any, depth: int) -> CommentedMap:
        mapping = CommentedMap()
        mapping._yaml_set_line_col(start.start_mark.line, start.start_mark.column)
        parser = self.parser
        while not parser.check_event(MappingEndEvent):
            key_mark = parser.peek_event().start_mark
            key = self.node(depth + 1)
            value_mark = parser.peek_event().start_mark
            try:
                hash(key)
            except TypeError:
                raise YamlProblem(
                    key_mark.line + 1, "invalid YAML: a mapping or list cannot be a key"
                ) from None
            if key in mapping:
                raise YamlProblem(
                    key_mark.line + 1,
                    f"duplicate key {str(key)!r}: a key may appear once in a mapping",
                )
            mapping[key] = self.node(depth + 1)
            mapping.lc.add_kv_line_col(
                key, [key_mark.line, key_mark.column, value_mark.line, value_mark.column]
            )
        parser.get_event()
        return mapping


def _yaml_problem(exc: MarkedYAMLError, lines: list[str]) -> tuple[int, str]:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 0
    problem = str(exc.problem or exc)
    duplicate = _DUPLICATE.search(problem)
    if duplicate:  # pragma: no cover - the builder reports duplicates itself
        return line, f"duplicate key {duplicate.group(1)!r}: a key may appear once in a mapping"
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    if "\t" in problem or "\t" in text[: len(text) - len(text.lstrip())]:
        return line, "a tab in the indentation: YAML indents with spaces only"
    return line, f"invalid YAML: {problem}"
