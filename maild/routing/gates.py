"""Literal gates: an index that tells, per message, which rules can possibly match.

A gate is a set of literals at least one of which a message must contain for a rule to match.
:func:`gate` derives it from the condition, conservatively (a rule without one is always run):

- ``equals`` on a field: the field must have one of the values exactly;
- ``contains``, ``starts_with``, ``ends_with``: the value must contain the operand, so it must
  contain the operand's first three characters (its *trigram*; operands shorter than that give
  no gate);
- ``all`` (or several keys in one mapping): the gate of any one item will do; ``any``: every
  item needs a gate, and the rule's gate is their union; ``not`` and the rest give none.

:class:`GateIndex` maps (field, value) and (field, trigram) to rule positions. Per message, the
values of each indexed field are looked up once (trigrams of a field longer than MAX_GRAM_TEXT
characters are not computed: its gated rules are all run, which is slower, never wrong), and the
result is the set of rules worth calling. Everything is lower-cased as the operators compare.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from maild.routing.match import MatchContext
from maild.routing.predicates import Key
from maild.routing.schema import AllOf, AnyOf, Condition, FieldCond, TextTest

GRAM = 3
MAX_GRAM_TEXT = 4096  # characters of one field, all values together

Literal = tuple[Key, bool, str]  # (field, exact?, value or trigram)


def gate(cond: Condition | None) -> frozenset[Literal] | None:
    """Literals one of which the message must have for ``cond`` to hold; None: no such set."""
    if isinstance(cond, FieldCond):
        key: Key = (cond.field, cond.header)
        for test in cond.tests:
            if not isinstance(test, TextTest):
                continue
            if test.op == "equals":
                return frozenset((key, True, v) for v in test.operands)
            if all(len(v) >= GRAM for v in test.operands):
                return frozenset((key, False, v[:GRAM]) for v in test.operands)
        return None
    if isinstance(cond, AllOf):
        found = [g for g in map(gate, cond.items) if g is not None]
        return min(found, key=len) if found else None  # fewer literals: fewer false hits
    if isinstance(cond, AnyOf):
        union: set[Literal] = set()
        for item in cond.items:
            one = gate(item)
            if one is None:
                return None
            union |= one
        return frozenset(union)
    return None


@dataclass(frozen=True)
class GateIndex:
    """Rule positions by the literals of their gates."""

    exact: dict[Key, dict[str, tuple[int, ...]]]
    grams: dict[Key, dict[str, tuple[int, ...]]]

    @classmethod
    def build(cls, gates: Iterable[tuple[int, frozenset[Literal]]]) -> GateIndex:
        exact: dict[Key, dict[str, list[int]]] = {}
        grams: dict[Key, dict[str, list[int]]] = {}
        for position, literals in gates:
            for key, is_exact, value in literals:
                table = (exact if is_exact else grams).setdefault(key, {})
                positions = table.setdefault(value, [])
                if not positions or positions[-1] != position:
                    positions.append(position)
        return cls(_frozen(exact), _frozen(grams))

    def hits(self, ctx: MatchContext) -> set[int]:
        """Positions of the gated rules this message can match."""
        found: set[int] = set()
        for key, table in self.exact.items():
            for value in ctx.lowered(*key):
                found.update(table.get(value, ()))
        for key, table in self.grams.items():
            values = ctx.lowered(*key)
            if sum(len(v) for v in values) > MAX_GRAM_TEXT:
                for positions in table.values():
                    found.update(positions)
                continue
            for gram in _grams(values):
                hit = table.get(gram)
                if hit is not None:
                    found.update(hit)
        return found


def _grams(values: Sequence[str]) -> set[str]:
    return {v[i : i + GRAM] for v in values for i in range(len(v) - GRAM + 1)}


def _frozen(tables: dict[Key, dict[str, list[int]]]) -> dict[Key, dict[str, tuple[int, ...]]]:
    return {key: {v: tuple(p) for v, p in table.items()} for key, table in tables.items()}
