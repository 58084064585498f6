"""Finishing residual clauses per request, and explaining any verdict in one line.

A node whose derived verdict is T, F or U is final (the engine decided it from catalog facts).
A node derived `R` depends on the request, live state or the decision time: its leaves are
compared here, its composites combined with Kleene's three-valued logic (spec §4).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from router.catalog.offerings import Offering
from router.decide.reasons import composite_reason, leaf_reason
from router.engine.derive import Derivation
from router.engine.facts import effective_max_output, est_cost
from router.engine.program import Node
from router.live.state import LiveState, is_deprecated
from router.policy.attributes import ATTRIBUTES, Source
from router.policy.compare import COMPARE, FLIP
from router.policy.terms import (
    AllOf,
    AnyOf,
    Cmp,
    FeatureCmp,
    Label,
    Member,
    Not,
    PredNot,
    ReqRef,
    SetOp,
    When,
)
from router.policy.truth import NOT, Truth, junction, when
from router.request.features import RequestFeatures


@dataclass(frozen=True)
class Context:
    features: RequestFeatures
    live: LiveState
    at: dt.datetime


Check = Callable[[Offering, Context], bool]
Tri = Callable[[Context], Truth]


def attr_value(o: Offering, attr: str, ctx: Context, derivation: Derivation) -> object:
    spec = ATTRIBUTES[attr]
    if spec.source is Source.STATIC:
        return o.attr(attr)
    if attr == "est_cost":
        return est_cost(o, ctx.features.input_tokens,
                        effective_max_output(o, ctx.features, derivation.policy))
    if attr == "deprecated":
        return is_deprecated(o.deprecation_date, ctx.at)
    return getattr(ctx.live.of(o.id), attr)


def feature_value(o: Offering, feature: str, ctx: Context, derivation: Derivation) -> object:
    if feature == "input_tokens":
        return ctx.features.input_tokens
    return effective_max_output(o, ctx.features, derivation.policy)


class Evaluator:
    def __init__(self, derivation: Derivation) -> None:
        self.d = derivation
        self.nodes = {n.pointer: n for n in derivation.program.nodes}
        # Request-independent results memoised per derivation (records, explain).
        self.memo: dict[tuple[Any, ...], Any] = {}
        self.top_order = {n.pointer: i for i, n in enumerate(derivation.top_nodes)}

    def split(self, offering_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(top clauses the derivation failed, top clauses left residual) for an offering."""
        key = ("split", offering_id, False)
        found = self.memo.get(key)
        if found is None:
            failed = []
            residual = []
            for n in self.d.top_nodes:
                truth = self.d.verdicts[n.pointer][offering_id][0]
                if truth == Truth.R:
                    residual.append(n.pointer)
                elif truth != Truth.T:
                    failed.append(n.pointer)
            found = self.memo[key] = (tuple(failed), tuple(residual))
        return found

    def truth(self, pointer: str, o: Offering, ctx: Context) -> Truth:
        """The node's final truth for this request (T, F or U)."""
        derived = self.d.verdicts[pointer][o.id][0]
        if derived != Truth.R:
            return derived
        if pointer in _BUILTIN_FAST:
            return Truth.of(_BUILTIN_FAST[pointer](o, ctx))
        node = self.nodes[pointer]
        clause = node.clause
        if isinstance(clause, Not | PredNot):
            return ~self.truth(node.children[0], o, ctx)
        if isinstance(clause, When):
            return when(*(self.truth(c, o, ctx) for c in node.children))
        if isinstance(clause, AnyOf | AllOf):
            return junction((self.truth(c, o, ctx) for c in node.children),
                            conjunction=isinstance(clause, AllOf))
        return self.leaf(node, o, ctx)[0]

    def bound(self, pointer: str, o: Offering) -> Tri:
        """`bind`, memoised per (clause, offering)."""
        key = ("bind", pointer, o.id)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self.bind(pointer, o)
        return found

    def bind(self, pointer: str, o: Offering) -> Tri:
        """`truth(pointer, o, ·)` specialised for one offering, for decide's hot loop: the
        offering's static sub-verdicts become constants and each clause's dispatch is resolved
        once. Same logic as `truth`, which stays the reference (tests compare the two)."""
        derived = self.d.verdicts[pointer][o.id][0]
        if derived != Truth.R:
            return lambda ctx: derived
        fast = _BUILTIN_FAST.get(pointer)
        if fast is not None:
            return lambda ctx: Truth.T if fast(o, ctx) else Truth.F
        node = self.nodes[pointer]
        clause = node.clause
        if isinstance(clause, Not | PredNot):
            child = self.bind(node.children[0], o)
            return lambda ctx: NOT[child(ctx)]
        if isinstance(clause, When):
            condition, then = (self.bind(c, o) for c in node.children)
            return lambda ctx: when(condition(ctx), then(ctx))
        if isinstance(clause, AnyOf | AllOf):
            kids = [self.bind(c, o) for c in node.children]
            conjunction = isinstance(clause, AllOf)
            return lambda ctx: junction((k(ctx) for k in kids), conjunction)
        if isinstance(clause, Label):
            name = clause.name
            return lambda ctx: Truth.T if name in ctx.features.labels else Truth.F
        return lambda ctx: self.leaf(node, o, ctx)[0]

    def builtin_check(self, pointer: str, o: Offering) -> Check | None:
        """The one-comparison check of a built-in left residual for `o` (what `bind` wraps
        in a `Truth`), for loops over many candidates; None for any other clause."""
        if self.d.verdicts[pointer][o.id][0] != Truth.R:
            return None
        return _BUILTIN_FAST.get(pointer)

    def settled_by_labels(self, pointer: str, o: Offering,
                          labels: frozenset[str]) -> Truth | None:
        """The node's final truth when only the request's labels are known, or None if it
        still depends on something else (a number from the request, live state, time).
        Exact: Kleene's connectives are settled by one deciding child (spec §4), so a value
        returned here is what `truth` gives for every request with these labels."""
        derived = self.d.verdicts[pointer][o.id][0]
        if derived != Truth.R:
            return derived
        if pointer in _BUILTIN_FAST:
            return None
        node = self.nodes[pointer]
        clause = node.clause
        if isinstance(clause, Label):
            return Truth.of(clause.name in labels)
        if isinstance(clause, SetOp):
            if not (isinstance(clause.values, ReqRef) and clause.values.feature == "labels"):
                return None
            features = RequestFeatures(input_tokens=0, labels=tuple(sorted(labels)))
            return self.leaf(node, o, Context(features, _NO_LIVE, _EPOCH))[0]
        kids = [self.settled_by_labels(c, o, labels) for c in node.children]
        if isinstance(clause, Not | PredNot):
            return None if kids[0] is None else ~kids[0]
        if isinstance(clause, When):
            condition, then = kids
            if condition is Truth.F or then is Truth.T:
                return Truth.T
            return None if condition is None or then is None else when(condition, then)
        if isinstance(clause, AnyOf | AllOf):
            win = Truth.F if isinstance(clause, AllOf) else Truth.T
            if win in kids:
                return win
            if None in kids:
                return None
            return junction((k for k in kids if k is not None),
                            conjunction=isinstance(clause, AllOf))
        return None

    def labels_only(self, pointer: str, o: Offering) -> bool:
        """Whether every residual part of the node reads the request's labels and nothing
        else, so its truth, reason and finished values are the same for every request with
        the same labels (the record memoises them per label tuple)."""
        key = ("labels_only", pointer, o.id)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._labels_only(pointer, o)
        return bool(found)

    def _labels_only(self, pointer: str, o: Offering) -> bool:
        if self.d.verdicts[pointer][o.id][0] != Truth.R:
            return True
        if pointer in _BUILTIN_FAST:
            return False
        node = self.nodes[pointer]
        clause = node.clause
        if isinstance(clause, Label):
            return True
        if isinstance(clause, SetOp):
            return isinstance(clause.values, ReqRef) and clause.values.feature == "labels"
        return bool(node.children) and all(self._labels_only(c, o) for c in node.children)

    def finish(self, pointer: str, o: Offering, ctx: Context) -> dict[str, Any]:
        """The per-request half of a proof: how a residual clause was finished — each residual
        leaf's truth with the offering-side and request/live-side values it compared; static
        sub-verdicts are named with their derived truth (their proof is the derivation's)."""
        derived = self.d.verdicts[pointer][o.id][0]
        if derived != Truth.R:
            return {"pointer": pointer, "truth": derived, "by": "derivation"}
        truth = self.truth(pointer, o, ctx)
        out: dict[str, Any] = {"pointer": pointer, "truth": truth}
        node = self.nodes[pointer]
        if pointer == "builtin:status_available":
            values = ctx.live.of(o.id)
            out["compared"] = {"status": values.status, "reason": values.reason}
        elif pointer == "builtin:capabilities_cover_needs":
            caps = o.capabilities
            out["compared"] = {"needs": list(ctx.features.needs),
                               "capabilities": None if caps is None else list(caps)}
        elif pointer == "builtin:context_fits_input":
            out["compared"] = {"input_tokens": ctx.features.input_tokens,
                               "context_window": o.context_window}
        elif node.children:
            out["children"] = [self.finish(c, o, ctx) for c in node.children]
        else:
            out["compared"] = self._compared(node, o, ctx)
        return out

    def _compared(self, node: Node, o: Offering, ctx: Context) -> dict[str, Any]:
        """The named values a residual leaf compared."""
        clause = node.clause
        f = ctx.features
        if isinstance(clause, Label):
            return {"label": clause.name, "request labels": list(f.labels)}
        if isinstance(clause, FeatureCmp):
            return {clause.feature: feature_value(o, clause.feature, ctx, self.d)}
        if isinstance(clause, SetOp):
            assert isinstance(clause.values, ReqRef)
            feature = clause.values.feature
            return {clause.attr: _plain(o.attr(clause.attr)),
                    feature: list(f.needs if feature == "needs" else f.labels)}
        assert isinstance(clause, Cmp | Member)
        out: dict[str, Any] = {clause.attr: _plain(attr_value(o, clause.attr, ctx, self.d))}
        if isinstance(clause, Cmp) and isinstance(clause.value, ReqRef):
            feature = clause.value.feature
            out[feature] = feature_value(o, feature, ctx, self.d)
        if clause.attr == "est_cost":
            out.update(input_tokens=f.input_tokens,
                       max_output=effective_max_output(o, f, self.d.policy),
                       input_price=o.input_price, output_price=o.output_price)
        elif clause.attr == "deprecated":
            out.update(deprecation_date=o.deprecation_date, at=ctx.at.isoformat())
        return out

    def leaf(self, node: Node, o: Offering, ctx: Context) -> tuple[Truth, object, object]:
        """(truth, offering-side value, request-side value) of a residual leaf."""
        clause = node.clause
        if isinstance(clause, Label):
            return Truth.of(clause.name in ctx.features.labels), None, None
        if isinstance(clause, FeatureCmp):
            fv = feature_value(o, clause.feature, ctx, self.d)
            if fv is None:
                return Truth.U, None, None
            return Truth.of(COMPARE[clause.op](fv, clause.number)), fv, None
        if isinstance(clause, SetOp):
            have = o.attr(clause.attr)
            assert isinstance(clause.values, ReqRef)
            wanted = (ctx.features.needs if clause.values.feature == "needs"
                      else ctx.features.labels)
            if have is None:
                return Truth.U, None, None
            hits = [w for w in wanted if w in have]
            misses = [w for w in wanted if w not in have]
            if clause.op == "has_all":
                return (Truth.F, misses[0], None) if misses else (Truth.T, "", None)
            if clause.op == "has_any":
                return (Truth.T, hits[0], None) if hits else (Truth.F, "", None)
            return (Truth.F, hits[0], None) if hits else (Truth.T, "", None)
        if isinstance(clause, Member):
            value = attr_value(o, clause.attr, ctx, self.d)
            if value is None:
                return Truth.U, None, None
            inside = any((value == v and type(value) is type(v)) or (
                isinstance(value, int | float) and not isinstance(value, bool)
                and isinstance(v, int | float) and not isinstance(v, bool) and value == v)
                for v in clause.values)
            return Truth.of(inside != clause.negated), value, None
        assert isinstance(clause, Cmp)
        lhs = attr_value(o, clause.attr, ctx, self.d)
        rhs: object = clause.value
        if isinstance(clause.value, ReqRef):
            rhs = feature_value(o, clause.value.feature, ctx, self.d)
        if lhs is None or rhs is None:
            return Truth.U, lhs, rhs
        return Truth.of(COMPARE[clause.op](lhs, rhs)), lhs, rhs

    def reason(self, pointer: str, o: Offering, ctx: Context | None) -> str:
        """One line: why the node has its truth for this offering (and request, if given)."""
        truth, _rule, witness = self.d.verdicts[pointer][o.id]
        node = self.nodes[pointer]
        clause = node.clause
        if truth == Truth.R:
            if ctx is None:
                return self._residual_text(node, o)
            truth = self.truth(pointer, o, ctx)
            if not node.children:
                t, lhs, rhs = self.leaf(node, o, ctx)
                extra = self._live_note(node, o, ctx)
                return leaf_reason(clause, t, lhs, rhs, extra)
            if isinstance(clause, When):
                parts = [self.reason(c, o, ctx) for c in node.children]
            else:
                parts = [self.reason(c, o, ctx) for c in self._relevant(node, o, ctx, truth)]
            return composite_reason(clause, truth, parts)
        if not node.children:
            return leaf_reason(clause, truth, witness)
        if truth != Truth.U and isinstance(witness, str) and witness in self.nodes:
            return composite_reason(clause, truth, [self.reason(witness, o, ctx)])
        return composite_reason(clause, truth, [self.reason(c, o, ctx) for c in node.children])

    def _relevant(self, node: Node, o: Offering, ctx: Context, truth: Truth) -> list[str]:
        picked = [c for c in node.children if self.truth(c, o, ctx) in (truth, Truth.U)]
        return picked[:1] if truth in (Truth.T, Truth.F) and picked and not isinstance(
            node.clause, Not | PredNot) else list(node.children)

    def _live_note(self, node: Node, o: Offering, ctx: Context) -> str:
        if isinstance(node.clause, Cmp) and node.clause.attr == "status":
            why = ctx.live.of(o.id).reason
            return f" ({why})" if why else ""
        return ""

    def _residual_text(self, node: Node, o: Offering) -> str:
        clause = node.clause
        witness = self.d.verdicts[node.pointer][o.id][2]
        if isinstance(clause, Cmp) and isinstance(clause.value, ReqRef) and witness != "":
            return (f"residual: request {clause.value.feature} must be "
                    f"{FLIP[clause.op]} {clause.attr} {witness}")
        return "residual: decided per request"


_NO_LIVE = LiveState({})
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _status_available(o: Offering, ctx: Context) -> bool:
    return ctx.live.of(o.id).status == "available"


def _capabilities_cover_needs(o: Offering, ctx: Context) -> bool:
    caps = o.capabilities
    return caps is not None and all(n in caps for n in ctx.features.needs)


def _context_fits_input(o: Offering, ctx: Context) -> bool:
    return o.context_window is not None and o.context_window >= ctx.features.input_tokens


# Built-ins (rules/builtins.json) whose residual form is one comparison: finished directly.
# Their compiled form is equivalent (tests/test_differential checks decide against a full
# derivation with request and live facts asserted).
_BUILTIN_FAST: dict[str, Check] = {
    "builtin:status_available": _status_available,
    "builtin:capabilities_cover_needs": _capabilities_cover_needs,
    "builtin:context_fits_input": _context_fits_input,
}

def _plain(value: object) -> object:
    """A compared value as JSON data (sets as sorted lists)."""
    if isinstance(value, frozenset | set):
        return sorted(value, key=str)
    return value

