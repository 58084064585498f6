"""An independent, plainly written reference for the spec's filter / rank / select semantics.

This module deliberately shares no evaluation code with the router: it reads the typed policy
AST (`router.policy.terms`, produced by admission), the catalog's `Offering` values, the request's
`RequestFeatures` and a `LiveState`, and computes the decision straight from
`the spec (policy_ir.md)` (§2–§6, §9):

* Kleene three-valued logic (T / F / U): a clause over an unknown attribute (or missing
  evidence) is U; `not U = U`; `any` is T if one part is T, F if all parts are F, else U; `all`
  is F if one part is F, T if all are T, else U; `["when", P, C]` is `any(not P, C)`.
* Built-in clauses, always applied before the policy's own: `status == "available"`,
  `capabilities ⊇ needs`, `context_window >= input_tokens`, `max_output_tokens > 0`.
* An offering is admissible only when every built-in and every filter clause is T.
* Rank: lexicographic keys, unknown values after known ones, `desc` reverses known values,
  final tie-break `id` ascending. Select: the first is the winner, the next N its cascade.

It must not import router.engine.compile / engine / derive / evaluate / decide / facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from router.catalog.offerings import Catalog, Offering
from router.live.state import LiveState
from router.policy.terms import (
    AllOf,
    AnyOf,
    Clause,
    Cmp,
    Evidence,
    FeatureCmp,
    Label,
    Member,
    Not,
    Policy,
    PredNot,
    RankKey,
    ReqPred,
    ReqRef,
    SetOp,
    When,
)
from router.request.features import RequestFeatures

T, F, U = "T", "F", "U"

BUILTIN_POINTERS: tuple[str, ...] = (
    "builtin:status_available",
    "builtin:capabilities_cover_needs",
    "builtin:context_fits_input",
    "builtin:max_output_positive",
)

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}

_LIVE_ATTRS = ("status", "latency_ms", "error_rate")
_SET_ATTRS = ("capabilities", "tags")


# -- three-valued connectives ------------------------------------------------------------------


def k_not(t: str) -> str:
    if t == T:
        return F
    if t == F:
        return T
    return U


def k_any(parts: list[str]) -> str:
    if T in parts:
        return T
    if all(p == F for p in parts):
        return F
    return U


def k_all(parts: list[str]) -> str:
    if F in parts:
        return F
    if all(p == T for p in parts):
        return T
    return U


def from_bool(b: bool) -> str:
    return T if b else F


# -- the per-offering world ----------------------------------------------------------------------


class World:
    """Everything a clause may read about one offering for one request."""

    def __init__(self, policy: Policy, offering: Offering, features: RequestFeatures,
                 live: LiveState, at: dt.datetime) -> None:
        self.policy = policy
        self.o = offering
        self.features = features
        self.live = live.of(offering.id)
        self.at = at

    def max_output(self) -> int | None:
        """M: the max output of the call: a `set` max-tokens (the last), else the request's,
        else the policy's first `default`; clamped to the offering's limit when the policy
        clamps; with no ask at all, the offering's limit."""
        token_params = ("max_tokens", "max_completion_tokens")

        def whole(v: object) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        sets = [m.value for m in self.policy.mutations
                if m.op == "set" and m.param in token_params and whole(m.value)]
        defaults = [m.value for m in self.policy.mutations
                    if m.op == "default" and m.param in token_params and whole(m.value)]
        asked: object = (sets[-1] if sets else self.features.max_output_tokens
                         if self.features.max_output_tokens is not None
                         else defaults[0] if defaults else None)
        limit = self.o.max_output_tokens
        if asked is None:
            return limit
        assert isinstance(asked, int)
        clamps = any(m.op == "clamp_max_tokens" for m in self.policy.mutations)
        return min(asked, limit) if clamps and limit is not None else asked

    def est_cost(self) -> float | None:
        m = self.max_output()
        ip = self.o.input_price
        op = self.o.output_price
        if ip is None or op is None or m is None:
            return None
        return (self.features.input_tokens * ip + m * op) / 1e6

    def deprecated(self) -> bool:
        d = self.o.deprecation_date
        if d is None:
            return False
        return dt.date.fromisoformat(d) <= self.at.date()

    def attr(self, name: str) -> Any:
        """The attribute's value, or None when unknown. Sets come back as frozensets."""
        if name == "est_cost":
            return self.est_cost()
        if name == "deprecated":
            return self.deprecated()
        if name in _LIVE_ATTRS:
            return getattr(self.live, name)
        value = getattr(self.o, name)
        if name in _SET_ATTRS:
            return None if value is None else frozenset(value)
        return value

    def feature(self, name: str) -> Any:
        if name == "input_tokens":
            return self.features.input_tokens
        if name == "max_output_tokens":
            return self.max_output()
        if name == "needs":
            return frozenset(self.features.needs)
        if name == "labels":
            return frozenset(self.features.labels)
        raise ValueError(f"unknown request feature {name!r}")

    def evidence(self, metric: str) -> float | None:
        return self.policy.evidence.get(metric, {}).get(self.o.model)


# -- clause evaluation -----------------------------------------------------------------------


def eval_pred(pred: ReqPred, w: World) -> str:
    if isinstance(pred, Label):
        return from_bool(pred.name in w.features.labels)
    if isinstance(pred, PredNot):
        return k_not(eval_pred(pred.child, w))
    if isinstance(pred, FeatureCmp):
        v = w.feature(pred.feature)
        if v is None:
            return U
        return from_bool(_OPS[pred.op](v, pred.number))
    raise TypeError(f"not a request predicate: {pred!r}")


def eval_clause(c: Clause, w: World) -> str:
    if isinstance(c, Not):
        return k_not(eval_clause(c.child, w))
    if isinstance(c, AnyOf):
        return k_any([eval_clause(x, w) for x in c.children])
    if isinstance(c, AllOf):
        return k_all([eval_clause(x, w) for x in c.children])
    if isinstance(c, When):
        return k_any([k_not(eval_pred(c.pred, w)), eval_clause(c.child, w)])
    if isinstance(c, Cmp):
        lhs = w.attr(c.attr)
        rhs = w.feature(c.value.feature) if isinstance(c.value, ReqRef) else c.value
        if lhs is None or rhs is None:
            return U
        return from_bool(_OPS[c.op](lhs, rhs))
    if isinstance(c, Member):
        v = w.attr(c.attr)
        if v is None:
            return U
        inside = any(v == x for x in c.values)
        return from_bool(not inside if c.negated else inside)
    if isinstance(c, SetOp):
        have = w.attr(c.attr)
        if have is None:
            return U
        wanted = w.feature(c.values.feature) if isinstance(c.values, ReqRef) else frozenset(
            c.values)
        if c.op in ("has", "has_all"):
            return from_bool(all(x in have for x in wanted))
        if c.op == "has_any":
            return from_bool(any(x in have for x in wanted))
        return from_bool(not any(x in have for x in wanted))
    if isinstance(c, Evidence):
        score = w.evidence(c.metric)
        if score is None:
            return U
        return from_bool(_OPS[c.op](score, c.number))
    raise TypeError(f"not a clause: {c!r}")


def builtin_truths(w: World) -> dict[str, str]:
    """The four built-in clauses, each under the same three-valued rules."""
    status = w.live.status
    caps = w.o.capabilities
    needs = frozenset(w.features.needs)
    ctx = w.o.context_window
    mot = w.o.max_output_tokens
    return {
        "builtin:status_available": from_bool(status == "available"),
        "builtin:capabilities_cover_needs": U if caps is None else from_bool(
            all(n in caps for n in needs)),
        "builtin:context_fits_input": U if ctx is None else from_bool(
            ctx >= w.features.input_tokens),
        "builtin:max_output_positive": U if mot is None else from_bool(mot > 0),
    }


def top_truths(policy: Policy, offering: Offering, features: RequestFeatures, live: LiveState,
               at: dt.datetime) -> dict[str, str]:
    """Truth of every top-level clause (built-ins first, then the policy's `/2/i`)."""
    w = World(policy, offering, features, live, at)
    out = builtin_truths(w)
    for c in policy.filters:
        out[c.pointer] = eval_clause(c, w)
    return out


# -- rank and select -------------------------------------------------------------------------


def key_value(key: RankKey, w: World) -> float | int | None:
    if key.evidence:
        return w.evidence(key.metric)
    v = w.attr(key.metric)
    if v is None or isinstance(v, bool):
        return None
    assert isinstance(v, int | float)
    return v


def _compare(a: tuple[str, tuple[Any, ...]], b: tuple[str, tuple[Any, ...]],
             keys: tuple[RankKey, ...]) -> int:
    """-1 if a ranks before b. Written as an explicit comparison, not as a sort key."""
    for key, va, vb in zip(keys, a[1], b[1], strict=True):
        if va is None and vb is None:
            continue
        if va is None:
            return 1
        if vb is None:
            return -1
        if va == vb:
            continue
        before = va > vb if key.descending else va < vb
        return -1 if before else 1
    if a[0] == b[0]:
        return 0
    return -1 if a[0] < b[0] else 1


def _insertion_sort(items: list[tuple[str, tuple[Any, ...]]],
                    keys: tuple[RankKey, ...]) -> list[tuple[str, tuple[Any, ...]]]:
    out: list[tuple[str, tuple[Any, ...]]] = []
    for item in items:
        i = len(out)
        while i > 0 and _compare(item, out[i - 1], keys) < 0:
            i -= 1
        out.insert(i, item)
    return out


def oracle_truths(policy: Policy, catalog: Catalog, features: RequestFeatures, live: LiveState,
                  at: dt.datetime) -> dict[str, dict[str, str]]:
    """{offering id: {top-level pointer: truth}}."""
    return {o.id: top_truths(policy, o, features, live, at) for o in catalog}


def oracle_decide(policy: Policy, catalog: Catalog, features: RequestFeatures, live: LiveState,
                  at: dt.datetime) -> dict[str, Any]:
    """The decision the spec prescribes, as plain data."""
    admissible: list[tuple[str, tuple[Any, ...]]] = []
    rejected: dict[str, list[str]] = {}
    for o in catalog:
        truths = top_truths(policy, o, features, live, at)
        failing = sorted(p for p, t in truths.items() if t != T)
        if failing:
            rejected[o.id] = failing
            continue
        w = World(policy, o, features, live, at)
        admissible.append((o.id, tuple(key_value(k, w) for k in policy.rank)))
    ranked = _insertion_sort(admissible, policy.rank)
    ids = [i for i, _ in ranked]
    return {
        "admissible": ids,
        "ranking_keys": [k for _, k in ranked],
        "selected": ids[0] if ids else None,
        "cascade": ids[1 : 1 + policy.cascade],
        "rejected": rejected,
    }
