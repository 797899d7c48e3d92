"""Conditions compiled once into plain functions of the message, answering yes or no.

:func:`predicate` turns a condition value into a ``Predicate``: a function of a
:class:`~maild.routing.match.MatchContext` returning True or False, with every operand prepared at
load (``equals`` operands as a frozenset, ``starts_with`` as a tuple, nested groups as closures).
It answers exactly what ``check(cond, ctx).matched`` answers (a property test holds them to it);
the words of the reason are worked out only when someone asks (``rules explain``, a trace).

A regex search is skipped when a literal the pattern cannot match without (``order `` in
``order (no|number) \\d{6}``) is not in the value; the value is lower-cased and folded once per
message (:func:`fold`: ``ı`` and ``ſ``, the two characters that match an ASCII letter under
IGNORECASE but do not lower-case to it), so the test never hides a match. Rules that cannot match
a message are not even called: see :mod:`maild.routing.gates`.
"""

from __future__ import annotations

import re._parser as sre_parse  # type: ignore[import-not-found]  # Python's own regex parser
from collections.abc import Callable
from re import _constants as sre_constants  # type: ignore[attr-defined]

from maild.routing.match import FOLD, MatchContext, check, prediction_holds, score_holds
from maild.routing.schema import (
    AllOf,
    AnyOf,
    BusinessHoursCond,
    Condition,
    ExistsTest,
    FieldCond,
    FieldTest,
    HasAttachments,
    Not,
    PredictionCond,
    RegexTest,
    ScoreCond,
)

Predicate = Callable[[MatchContext], bool]
Key = tuple[str, str | None]  # (field, header or custom field name)

MIN_LITERAL = 3  # shorter literals are in almost every text: not worth the test


def fold(text: str) -> str:
    """``text`` lower-cased so that any ASCII literal a case-insensitive regex finds in ``text``
    is, lower-cased, a substring of the result."""
    return text.lower().translate(FOLD)


def required_literal(pattern: str) -> str | None:
    """The longest ASCII literal every match of ``pattern`` contains (lower-cased), or None.

    Only runs of plain characters in the pattern's top-level sequence (and in groups that are
    always taken) count; alternatives, classes and repeats end a run. A pattern Python's own
    parser cannot read (``regex``-only syntax) has no literal: its search always runs.
    """
    try:
        parsed = sre_parse.parse(pattern)
    except (sre_constants.error, RecursionError, OverflowError, ValueError):
        return None
    best = ""
    for run in _runs(list(parsed.data)):
        if len(run) > len(best):
            best = run
    return best.lower() if len(best) >= MIN_LITERAL else None


def _runs(items: list[tuple[object, object]]) -> list[str]:
    runs: list[str] = []
    current: list[str] = []
    for op, arg in items:
        if op is sre_constants.LITERAL and isinstance(arg, int) and 32 <= arg < 127:
            current.append(chr(arg))
            continue
        runs.append("".join(current))
        current = []
        if op is sre_constants.SUBPATTERN and isinstance(arg, tuple):
            _group, add_flags, _del_flags, inner = arg
            if not add_flags:  # (?x:...) and the like change what a literal means: skip
                runs.extend(_runs(list(inner)))
    runs.append("".join(current))
    return runs


# --- compiling ------------------------------------------------------------------------------------


def predicate(cond: Condition) -> Predicate:
    """The condition as a function of the context; True exactly when ``check`` matches."""
    if isinstance(cond, FieldCond):
        return _field(cond)
    if isinstance(cond, AllOf):
        items = tuple(predicate(item) for item in cond.items)
        if len(items) == 2:
            first, second = items
            return lambda ctx: first(ctx) and second(ctx)

        def all_of(ctx: MatchContext) -> bool:
            return all(item(ctx) for item in items)

        return all_of
    if isinstance(cond, AnyOf):
        items = tuple(predicate(item) for item in cond.items)

        def any_of(ctx: MatchContext) -> bool:
            return any(item(ctx) for item in items)

        return any_of
    if isinstance(cond, Not):
        inner = predicate(cond.item)
        return lambda ctx: not inner(ctx)
    if isinstance(cond, HasAttachments):
        expected = cond.expected
        return lambda ctx: ctx.attachment_count() > 0 if expected else ctx.attachment_count() == 0
    if isinstance(cond, ScoreCond):
        score_cond = cond
        if score_cond.of == "sentiment":
            return lambda ctx: score_holds(score_cond, ctx.sentiment())
        return lambda ctx: score_holds(score_cond, ctx.mta().score)
    if isinstance(cond, PredictionCond):
        predicted = cond
        return lambda ctx: prediction_holds(predicted, ctx.prediction())
    if isinstance(cond, BusinessHoursCond):
        expected = cond.expected
        return lambda ctx: ctx.in_business_hours() == expected
    # An attachment condition is rare and loops over parts anyway: the explaining check will do.
    return lambda ctx: check(cond, ctx).matched


def _field(cond: FieldCond) -> Predicate:
    key: Key = (cond.field, cond.header)
    tests = tuple(_test(test, key) for test in cond.tests)
    if len(tests) == 1:
        return tests[0]

    def every(ctx: MatchContext) -> bool:
        return all(test(ctx) for test in tests)

    return every


def _test(test: FieldTest, key: Key) -> Predicate:
    field, header = key
    if isinstance(test, ExistsTest):
        expected = test.expected
        return lambda ctx: any(ctx.values(field, header)) == expected
    if isinstance(test, RegexTest):
        return _regex(test, field, header)
    operands = test.operands
    if test.op == "equals":
        wanted = frozenset(operands)
        return lambda ctx: not wanted.isdisjoint(ctx.lowered(field, header))
    if test.op == "contains":
        if len(operands) == 1:
            (one,) = operands
            return lambda ctx: any(one in value for value in ctx.lowered(field, header))

        def contains(ctx: MatchContext) -> bool:
            for value in ctx.lowered(field, header):
                for operand in operands:
                    if operand in value:
                        return True
            return False

        return contains
    if test.op == "starts_with":
        return lambda ctx: any(v.startswith(operands) for v in ctx.lowered(field, header))
    return lambda ctx: any(v.endswith(operands) for v in ctx.lowered(field, header))


def _regex(test: RegexTest, field: str, header: str | None) -> Predicate:
    checks = tuple((pattern, required_literal(pattern.pattern)) for pattern in test.patterns)

    def matches(ctx: MatchContext) -> bool:
        values = ctx.values(field, header)
        folded = ctx.folded(field, header)
        for value, low in zip(values, folded, strict=True):
            for pattern, literal in checks:
                if literal is not None and literal not in low:
                    continue  # the pattern cannot match without it
                found = ctx.search(pattern, value)
                if found is not None and found is not False:
                    return True
        return False

    return matches
