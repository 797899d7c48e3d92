"""The fast rules-file reader gives what ruamel's round-trip loader gives, with the same lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from maild.routing.policies import line_of
from maild.yamlfile import YamlProblem, read_yaml_text

REPO = Path(__file__).resolve().parents[2]

SAMPLES = [
    "a: 1\nb: [1, 2.5, -3, 0x1f, 1_000]\nc: {d: NO, e: yes, f: true, g: ~, h: null}\n",
    "week: {mon-fri: 09:00-17:00}\nurl: [http://x.y/z]\n",
    "holidays: [2026-12-25, '2026-12-26', 2026-12-31T10:00:00Z]\nx: 'quoted: yes'\ny: \"1\"\n",
    "rules:\n  - name: R\n    when: {subject: {contains: [a, b]}}\n    then: {tags: [x]}\n"
    "  - name: S\n    # a comment\n    when:\n      body: {matches: 'order \\d+'}\n",
    "text: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
    "",
    "# only a comment\n",
]


def rt(text: str) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml.load(text)


def lines(node: Any, out: list[tuple[Any, int]]) -> list[tuple[Any, int]]:
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((key, line_of(node, key)))
            lines(value, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((i, line_of(node, i)))
            lines(value, out)
    return out


@pytest.mark.parametrize("text", SAMPLES)
def test_same_values_and_lines_as_ruamel_round_trip(text: str) -> None:
    ours, theirs = read_yaml_text(text), rt(text)
    assert ours == theirs

    def types(data: Any) -> list[type]:
        return [type(v) for v in (data or {}).values() if not isinstance(v, str)]

    assert types(ours) == types(theirs)
    assert lines(ours, []) == lines(theirs, [])


def test_shipped_rules_read_as_ruamel_reads_them() -> None:
    for path in sorted((REPO / "rules").glob("*.yaml")):
        text = path.read_text()
        assert read_yaml_text(text) == rt(text), path
        assert lines(read_yaml_text(text), []) == lines(rt(text), []), path


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a'"),
        ("a: &x 1\nb: *x\n", 1, "anchors and aliases"),
        ("a: !!str 1\n", 1, "YAML tags"),
        ("a:\n  - b\n\t- c\n", 3, "a tab in the indentation"),
        ("a: [1\n", 2, "invalid YAML"),
        ("a: 1\n---\nb: 2\n", 2, "one document per file"),
        ("? [a]\n: 1\n", 1, "cannot be a key"),
    ],
)
def test_problems_name_their_line(text: str, line: int, words: str) -> None:
    with pytest.raises(YamlProblem) as info:
        read_yaml_text(text)
    assert info.value.line == line
    assert words in info.value.message


_PIECES = st.sampled_from(
    [
        "a",
        "b: ",
        "- ",
        "\n",
        "  ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        ": ",
        "'x: y'",
        '"1"',
        "09:00",
        "12",
        "yes",
        "NO",
        "~",
        "2026-12-25",
        "#c",
        "|\n  t",
        "&x ",
        "*x",
        "!!str ",
        "\t",
        "? ",
    ]
)


@pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning")
@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_any_text_reads_as_ruamel_reads_it_or_names_a_line(text: str) -> None:
    try:
        theirs = rt(text)
    except Exception:  # ruamel refuses it: so must we, in words
        if "\t" in text:  # libyaml takes a tab as a separator where ruamel does not: harmless
            return
        with pytest.raises(YamlProblem):
            read_yaml_text(text)
        return
    try:
        ours = read_yaml_text(text)
    except YamlProblem as exc:  # what rules files refuse on purpose
        assert any(w in exc.message for w in ("anchors", "tags", "duplicate", "cannot be a key"))
        return
    assert ours == theirs
    assert lines(ours, []) == lines(theirs, [])
