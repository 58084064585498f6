"""The admitted policy as typed terms (the output of `admit`).

Every node keeps the RFC 6901 pointer of the JSON term it came from, so rules, proofs and
explanations can name their clause.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

Scalar = int | float | str | bool
CmpOp = Literal["<", "<=", ">", ">=", "==", "!="]
SetOpName = Literal["has", "has_all", "has_any", "has_none"]

CMP_OPS: tuple[str, ...] = ("<", "<=", ">", ">=", "==", "!=")
ORDER_OPS: tuple[str, ...] = ("<", "<=", ">", ">=")
SET_OPS: tuple[str, ...] = ("has", "has_all", "has_any", "has_none")


@dataclass(frozen=True)
class ReqRef:
    """`["req", FEATURE]`: a request feature, resolved per request."""

    feature: str


@dataclass(frozen=True)
class Cmp:
    pointer: str
    op: CmpOp
    attr: str
    value: Scalar | ReqRef


@dataclass(frozen=True)
class Member:
    """`in` / `not_in` over a scalar attribute."""

    pointer: str
    negated: bool
    attr: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class SetOp:
    pointer: str
    op: SetOpName
    attr: str
    values: tuple[str, ...] | ReqRef


@dataclass(frozen=True)
class Evidence:
    """`["ev", METRIC, CMP, NUMBER]`."""

    pointer: str
    metric: str
    op: CmpOp
    number: float


@dataclass(frozen=True)
class Not:
    pointer: str
    child: Clause


@dataclass(frozen=True)
class AnyOf:
    pointer: str
    children: tuple[Clause, ...]


@dataclass(frozen=True)
class AllOf:
    pointer: str
    children: tuple[Clause, ...]


@dataclass(frozen=True)
class Label:
    """`["req", LABEL]` as a request predicate."""

    pointer: str
    name: str


@dataclass(frozen=True)
class PredNot:
    pointer: str
    child: ReqPred


@dataclass(frozen=True)
class FeatureCmp:
    """`[CMP, ["req", FEATURE], NUMBER]` as a request predicate."""

    pointer: str
    op: CmpOp
    feature: str
    number: float


ReqPred = Label | PredNot | FeatureCmp


@dataclass(frozen=True)
class When:
    pointer: str
    pred: ReqPred
    child: Clause


Leaf = Cmp | Member | SetOp | Evidence
Clause = Cmp | Member | SetOp | Evidence | Not | AnyOf | AllOf | When


@dataclass(frozen=True)
class RankKey:
    pointer: str
    descending: bool
    metric: str  # attribute name, "est_cost", or an evidence metric when `evidence` is True
    evidence: bool = False

    def label(self) -> str:
        name = f"ev:{self.metric}" if self.evidence else self.metric
        return f"{'desc' if self.descending else 'asc'} {name}"


@dataclass(frozen=True)
class Mutation:
    pointer: str
    op: Literal["clamp_max_tokens", "set", "default"]
    param: str | None = None
    value: Scalar | None = None


@dataclass(frozen=True)
class Fallback:
    on: tuple[str, ...] = ("error", "timeout", "rate_limit")
    retries: int = 0
    backoff_ms: int = 0
    timeout_ms: int = 30000
    then: Literal["next", "fail"] = "next"


@dataclass(frozen=True)
class Policy:
    """An admitted policy: typed, canonical, hashed."""

    term: list[object]
    canonical: str
    hash: str
    evidence: dict[str, dict[str, float]]
    filters: tuple[Clause, ...]
    rank: tuple[RankKey, ...]
    cascade: int
    mutations: tuple[Mutation, ...]
    fallback: Fallback

    def set_max_tokens(self) -> int | None:
        """The max tokens a `set` forces (the last such `set` wins), if any."""
        return self._token_mutations[0]

    @property
    def clamps_max_tokens(self) -> bool:
        return self._token_mutations[2]

    @functools.cached_property
    def _token_mutations(self) -> tuple[int | None, int | None, bool]:
        """(forced by `set`, first `default`, clamps): read on every decision, computed once."""
        forced: int | None = None
        default: int | None = None
        clamps = False
        for m in self.mutations:
            whole = isinstance(m.value, int) and not isinstance(m.value, bool)
            if m.op == "clamp_max_tokens":
                clamps = True
            elif m.param in ("max_tokens", "max_completion_tokens") and whole:
                assert isinstance(m.value, int)
                if m.op == "set":
                    forced = m.value
                elif m.op == "default" and default is None:
                    default = m.value
        return forced, default, clamps

    def default_max_tokens(self) -> int | None:
        return self._token_mutations[1]


def walk(clause: Clause) -> list[Clause]:
    """The clause and all its sub-clauses, parents first."""
    out: list[Clause] = [clause]
    if isinstance(clause, Not | When):
        out += walk(clause.child)
    elif isinstance(clause, AnyOf | AllOf):
        for c in clause.children:
            out += walk(c)
    return out


def render(clause: Clause | ReqPred) -> list[object]:
    """The clause back as its JSON term."""
    if isinstance(clause, Cmp):
        v: object = clause.value
        if isinstance(clause.value, ReqRef):
            v = ["req", clause.value.feature]
        return [clause.op, clause.attr, v]
    if isinstance(clause, Member):
        return ["not_in" if clause.negated else "in", clause.attr, list(clause.values)]
    if isinstance(clause, SetOp):
        vals: object
        if isinstance(clause.values, ReqRef):
            vals = ["req", clause.values.feature]
        elif clause.op == "has":
            vals = clause.values[0]
        else:
            vals = list(clause.values)
        return [clause.op, clause.attr, vals]
    if isinstance(clause, Evidence):
        return ["ev", clause.metric, clause.op, clause.number]
    if isinstance(clause, Not):
        return ["not", render(clause.child)]
    if isinstance(clause, AnyOf):
        return ["any", *[render(c) for c in clause.children]]
    if isinstance(clause, AllOf):
        return ["all", *[render(c) for c in clause.children]]
    if isinstance(clause, When):
        return ["when", render(clause.pred), render(clause.child)]
    if isinstance(clause, Label):
        return ["req", clause.name]
    if isinstance(clause, PredNot):
        return ["not", render(clause.child)]
    return [clause.op, ["req", clause.feature], clause.number]
