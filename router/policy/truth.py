"""The truth of a clause, and Kleene's three-valued logic over it (spec §4).

`T` true, `F` false, `U` unknown (an attribute or evidence the catalog lacks: fails closed), and
`R` residual — the engine could not decide it from catalog facts because it depends on the
request, live state or the decision time; `decide` finishes it per request. `R` only appears in
derived verdicts, never as a final truth.

This is the one implementation of the logic: the compiler emits its rule schemes from it, and
`decide` evaluates residual clauses with it. (`router.explain.proof.check_proof` re-checks proofs
with its own small copy on purpose: an independent checker.)
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Truth(StrEnum):
    T = "T"
    F = "F"
    U = "U"
    R = "R"

    def __invert__(self) -> Truth:
        """Kleene negation: not T is F, not F is T, unknown and residual stay as they are."""
        return NOT[self]

    @classmethod
    def of(cls, held: bool) -> Truth:
        return cls.T if held else cls.F


NOT: dict[str, Truth] = {Truth.T: Truth.F, Truth.F: Truth.T, Truth.U: Truth.U, Truth.R: Truth.R}
BY_NAME: dict[str, Truth] = {t.value: t for t in Truth}


def deciding(conjunction: bool) -> Truth:
    """The value one child settles a junction with: F for `all`, T for `any`."""
    return Truth.F if conjunction else Truth.T


def junction(values: Iterable[Truth], conjunction: bool) -> Truth:
    """`all` (conjunction) or `any` of final truths: one deciding child settles it, every child
    the other way decides the other way, anything else is unknown."""
    win = deciding(conjunction)
    lose = ~win
    undecided = False
    for v in values:
        if v == win:
            return win
        if v != lose:
            undecided = True
    return Truth.U if undecided else lose


def all_of(values: Iterable[Truth]) -> Truth:
    return junction(values, conjunction=True)


def any_of(values: Iterable[Truth]) -> Truth:
    return junction(values, conjunction=False)


def when(condition: Truth, clause: Truth) -> Truth:
    """`["when", P, C]` ≡ `any(not P, C)`: true whenever P does not hold."""
    return any_of((~condition, clause))
