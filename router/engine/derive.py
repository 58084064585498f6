"""Derivation: compiled program × catalog snapshot → per-offering verdicts with provenance.

Computed once per (policy hash, catalog version, ruleset version), off the request path, and
cached. The result says, for every offering, whether it is statically rejected (some top-level
clause is false or unknown whatever the request) or a candidate whose remaining (residual)
clauses `decide` finishes per request.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from router.catalog.offerings import Catalog
from router.common.problems import PolicyError, Problem
from router.engine import datalog
from router.engine.compile import Ruleset, compile_policy, load_ruleset
from router.engine.facts import static_facts
from router.engine.program import Node, Program
from router.policy.terms import Policy
from router.policy.truth import Truth

Verdict = datalog.Verdict

# Work units (`router.policy.cost`: compiled rule literals per offering, times offerings) one
# derivation may take: measured on two cores, a unit costs 2–5 µs and up to ~0.3 KB, so the
# limit is some 8–20 s and 1 GB of engine work. Every admissible policy (at most 500 units of
# its own, 15 for the built-ins) fits a catalog of 7,700 offerings; the embedded one has 3,189.
MAX_DERIVE_COST = 4_000_000


@dataclass(frozen=True)
class Derivation:
    policy: Policy
    catalog: Catalog
    ruleset_version: str
    program: Program
    verdicts: dict[str, dict[str, Verdict]]  # pointer → offering id → first verdict
    rejected: dict[str, tuple[str, ...]]  # offering id → failed top-level pointers (F or U)
    candidates: tuple[str, ...]  # offering ids, in catalog (id) order
    residual: dict[str, tuple[str, ...]]  # candidate id → top-level pointers left residual
    seconds: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.policy.hash, self.catalog.version, self.ruleset_version)

    @functools.cached_property
    def top_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.program.nodes if n.top)

    def verdict(self, pointer: str, offering_id: str) -> Verdict:
        return self.verdicts[pointer][offering_id]


def derive(policy: Policy, catalog: Catalog, ruleset: Ruleset | None = None) -> Derivation:
    """Run the partial-mode program over the catalog's static facts."""
    started = time.perf_counter()
    ruleset = ruleset or load_ruleset()
    program = compile_policy(policy, ruleset, "partial")
    within_budget(program, len(catalog))
    raw = datalog.run(program, static_facts(program, catalog, policy))
    verdicts = {ptr: {oid: vs[0] for oid, vs in per.items()} for ptr, per in raw.items()}
    top = [n.pointer for n in program.nodes if n.top]
    rejected: dict[str, tuple[str, ...]] = {}
    residual: dict[str, tuple[str, ...]] = {}
    candidates: list[str] = []
    for o in catalog:
        failed: list[str] = []
        left: list[str] = []
        for ptr in top:
            v = verdicts[ptr].get(o.id)
            if v is None:
                raise RuntimeError(f"engine derived no verdict for {ptr} on {o.id}")
            if v[0] in (Truth.F, Truth.U):
                failed.append(ptr)
            elif v[0] == Truth.R:
                left.append(ptr)
        if failed:
            rejected[o.id] = tuple(failed)
        else:
            candidates.append(o.id)
            residual[o.id] = tuple(left)
    return Derivation(policy, catalog, ruleset.version, program, verdicts, rejected,
                      tuple(candidates), residual, time.perf_counter() - started)


def within_budget(program: Program, offerings: int) -> None:
    """Refuse (`policy.too_complex`) a derivation that would cost more than `MAX_DERIVE_COST`
    units, before the engine starts: the policy is admissible, but not over this many
    offerings. Nothing is derived or cached."""
    per_offering = program.cost()
    work = per_offering * offerings
    if work > MAX_DERIVE_COST:
        raise PolicyError([Problem(
            code="policy.too_complex", pointer="/2",
            message=f"deriving the filter over {offerings:,} offerings costs {work:,} units "
                    f"({per_offering:,} per offering, built-in clauses included); the limit is "
                    f"{MAX_DERIVE_COST:,}",
            hint="simplify the filter (one `in`/`has_any` list instead of many alternatives, "
                 "less nesting) or route over a smaller catalog; see `Derivation cost` "
                 "in docs/policy-language.md")])
