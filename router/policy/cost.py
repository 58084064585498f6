"""What deriving a policy costs, known before any catalog is read: a budget checked at admission.

Derivation work grows with the number of offerings times the size of the compiled program, and
the program's size follows from the policy alone. One *unit* is one literal of one compiled rule
(`router.engine.compile`), counted once for its own clause and once more for every clause it is
nested in — the engine evaluates a clause again for each enclosing clause. Measured on two
cores, a unit costs about 2–5 µs per offering, whatever the clause's kind (see
`docs/policy-language.md`, Derivation cost).

`policy_cost` mirrors what the compiler emits in partial mode, clause kind by clause kind; a test
holds it equal to the compiled program's own count (`Program.cost`), so a compiler change that
forgets this module fails there. A list (`in`, `has_any`, ...) longer than `SHORT_LIST` costs
the same at any length: it is one set of `member` facts, joined once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from router.common.problems import Problem
from router.policy.attributes import ATTRIBUTES, Source
from router.policy.terms import (
    AllOf,
    AnyOf,
    Clause,
    Cmp,
    Evidence,
    Member,
    Not,
    Policy,
    PredNot,
    ReqPred,
    ReqRef,
    SetOp,
    When,
)

# Units per offering a policy's own filter may cost (the built-in clauses are not counted).
# The support-ticket policy of the spec costs 40; 100 comparisons side by side cost 500, and
# take about 8 s and 0.25 GB to derive over the embedded catalog (3,189 offerings).
MAX_POLICY_COST = 500
FAN_IN = 8  # the longest conjunction of child verdicts in one compiled rule
SHORT_LIST = 4  # lists up to this long compile to a rule (or comparison) per value


@dataclass(frozen=True)
class Cost:
    total: int  # units per offering, the policy's own clauses
    top: tuple[tuple[str, int], ...]  # (pointer, units) per top-level clause, in policy order


def policy_cost(policy: Policy) -> Cost:
    return filter_cost(policy.filters)


def filter_cost(filters: Iterable[Clause]) -> Cost:
    top = tuple((c.pointer, clause_cost(c, 0)) for c in filters)
    return Cost(sum(units for _, units in top), top)


def too_complex(cost: Cost) -> Problem | None:
    """`policy.too_complex` when the filter costs more than `MAX_POLICY_COST` per offering,
    pointing at the clause that costs the most when it holds half of it, else at the filter."""
    if cost.total <= MAX_POLICY_COST:
        return None
    pointer, units = max(cost.top, key=lambda t: t[1])
    if 2 * units >= cost.total:
        where = f", {units:,} of them in this clause"
    else:
        pointer, where = "/2", f" over {len(cost.top)} clauses"
    return Problem(
        code="policy.too_complex", pointer=pointer,
        message=f"the filter costs {cost.total:,} units per offering to derive{where}; "
                f"the limit is {MAX_POLICY_COST:,}",
        hint="many `==` or `any` alternatives over one attribute cost less as one `in` or "
             "`has_any` list (a list costs the same at any length); each level of nesting "
             "counts a clause again; see `Derivation cost` in docs/policy-language.md")


def clause_cost(clause: Clause | ReqPred, depth: int) -> int:
    """Units of `clause` and everything under it, nested `depth` clauses deep."""
    weight = depth + 1
    if isinstance(clause, Not | PredNot):
        return 4 * weight + clause_cost(clause.child, depth + 1)
    if isinstance(clause, AnyOf | AllOf):
        kids = sum(clause_cost(c, depth + 1) for c in clause.children)
        return junction_literals(len(clause.children)) * weight + kids
    if isinstance(clause, When):
        return (junction_literals(2) * weight + clause_cost(clause.pred, depth + 1)
                + clause_cost(clause.child, depth + 1))
    return leaf_literals(clause) * weight


def junction_literals(n: int) -> int:
    """`any`/`all` over n parts: n deciding rules, the folded all-agree conjunction, n rules
    each for the `win` and `res` helpers, n residual rules of 2 literals, n unknown rules of 3."""
    return 8 * n + folded_literals(n)


def folded_literals(n: int) -> int:
    total = 0
    while n > FAN_IN:
        total += n
        n = -(-n // FAN_IN)
    return total + n


def leaf_literals(clause: Clause | ReqPred) -> int:
    if isinstance(clause, Evidence):
        return 8  # T and F: model, score, comparison; U: model, no evidence
    if not isinstance(clause, Cmp | Member | SetOp):
        return 1  # a request predicate: residual at derive time
    residual = 1 if ATTRIBUTES[clause.attr].source is not Source.STATIC else 0
    if isinstance(clause, SetOp):
        if isinstance(clause.values, ReqRef):
            return 2  # unknown; residual when the set is known
        n = len(clause.values)
        if clause.op in ("has", "has_all"):  # unknown; lacks one; holds all
            return 1 + 3 * n if n <= SHORT_LIST else 1 + 3 + 3 + 2
        return 2 + 2 * n if n <= SHORT_LIST else 1 + 2 + 2 + 2  # unknown; holds one; none
    if isinstance(clause, Member):  # unknown, (residual,) equal to one, to none
        n = len(clause.values)
        return residual + (2 + 3 * n if n <= SHORT_LIST else 5)
    if isinstance(clause.value, ReqRef):
        return 2 + residual  # unknown, (live/request residual,) residual on the request
    return 5 + residual  # unknown, (residual,) true and false: the fact and the test
