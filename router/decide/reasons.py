"""One human line per verdict: why a clause held, failed or was unknown for an offering.

Messages follow one style: lowercase, the attribute first, user values in backticks, numbers
as they are (``output_price 30.0 > 10.0``, ``region `us` not in [eu]``, ``latency_ms unknown``).
"""

from __future__ import annotations

from router.policy.compare import NEGATE
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
    PredNot,
    ReqPred,
    ReqRef,
    SetOp,
    When,
)
from router.policy.truth import Truth


def fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"`{value}`"
    return repr(value) if isinstance(value, float) else str(value)


def rhs_text(value: object) -> str:
    if isinstance(value, ReqRef):
        return f"request {value.feature}"
    return fmt(value)


def leaf_reason(clause: Clause | ReqPred, truth: Truth, lhs: object = None,
                rhs: object = None, extra: str = "") -> str:
    """`lhs` is the offering's value (witness); `rhs` the compared value when it varies."""
    if isinstance(clause, Cmp):
        name = clause.attr
        if truth == Truth.U:  # the offering's value is the unknown one unless it is given
            if lhs not in (None, "") and isinstance(clause.value, ReqRef):
                return f"{name} {fmt(lhs)}; request {clause.value.feature} unknown"
            return f"{name} unknown{extra}"
        right = rhs if rhs is not None else clause.value
        op = clause.op if truth == Truth.T else NEGATE[clause.op]
        label = (f" (request {clause.value.feature})" if isinstance(clause.value, ReqRef)
                 else "")
        shown = rhs_text(right) if isinstance(right, ReqRef) else fmt(right)
        return f"{name} {fmt(lhs)} {op} {shown}{label}{extra}"
    if isinstance(clause, Member):
        if truth == Truth.U:
            return f"{clause.attr} unknown"
        values = ", ".join(str(v) for v in clause.values)
        inside = (truth == Truth.T) != clause.negated
        return f"{clause.attr} {fmt(lhs)} {'in' if inside else 'not in'} [{values}]"
    if isinstance(clause, SetOp):
        if truth == Truth.U:
            return f"{clause.attr} unknown"
        wanted = (f"request {clause.values.feature}" if isinstance(clause.values, ReqRef)
                  else "[" + ", ".join(clause.values) + "]")
        if isinstance(lhs, str) and lhs:
            held = truth == Truth.T
            if clause.op in ("has", "has_all"):
                return f"{clause.attr} lacks {fmt(lhs)}" + (
                    f" (needed by {wanted})" if isinstance(clause.values, ReqRef) else "")
            if clause.op == "has_any":
                return f"{clause.attr} has {fmt(lhs)}"
            if held:
                return f"{clause.attr} has none of {wanted}"
            return f"{clause.attr} has {fmt(lhs)}"
        verbs = {"has": "has", "has_all": "has all of", "has_any": "has one of",
                 "has_none": "has none of"}
        if truth == Truth.T:
            return f"{clause.attr} {verbs[clause.op]} {wanted}"
        negs = {"has": "lacks", "has_all": "lacks some of", "has_any": "has none of",
                "has_none": "has some of"}
        return f"{clause.attr} {negs[clause.op]} {wanted}"
    if isinstance(clause, Evidence):
        if truth == Truth.U:
            return f"no evidence `{clause.metric}` for model {fmt(lhs)}"
        op = clause.op if truth == Truth.T else NEGATE[clause.op]
        return f"ev {clause.metric} {fmt(lhs)} {op} {fmt(clause.number)}"
    if isinstance(clause, Label):
        return f"request label {fmt(clause.name)} {'present' if truth == 'T' else 'absent'}"
    if isinstance(clause, FeatureCmp):
        if truth == Truth.U:
            return f"request {clause.feature} unknown"
        op = clause.op if truth == Truth.T else NEGATE[clause.op]
        return f"request {clause.feature} {fmt(lhs)} {op} {fmt(clause.number)}"
    return f"{type(clause).__name__.lower()} {truth}"


def composite_reason(clause: Clause | ReqPred, truth: Truth, parts: list[str]) -> str:
    inner = "; ".join(parts)
    if isinstance(clause, Not | PredNot):
        return f"not ({inner})"
    if isinstance(clause, When):
        if len(parts) == 2:
            return f"when {parts[0]}: {parts[1]}"
        return f"when ({inner})"
    if isinstance(clause, AnyOf | AllOf):
        name = "any" if isinstance(clause, AnyOf) else "all"
        word = {Truth.U: "unknown ", Truth.F: "none held " if name == "any" else ""}.get(truth, "")
        return f"{name}: {word}({inner})"
    return inner
