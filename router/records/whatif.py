"""`diff`: stored decisions re-decided under a new policy or catalog — which moved, between
which offerings, *why* each moved, and what it does to the estimated cost.

Each stored decision keeps its own request features, live values and time; only the policy
and/or the catalog change. "Why" names the clause that now rejects the old winner (with its
one-line reason), or the rank key on which the new winner now beats it, or that the old winner
left the catalog.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from router.catalog.offerings import Catalog, Offering
from router.decide.decider import Decision
from router.engine.facts import effective_max_output, est_cost
from router.policy.terms import Policy
from router.records.rebuild import Replayer
from router.records.store import StoredRecord
from router.request.features import RequestFeatures


@dataclass(frozen=True)
class Moved:
    trace_id: str
    at: str
    old: str | None
    new: str | None
    why: str
    old_cost: float | None
    new_cost: float | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class DiffReport:
    decisions: int = 0
    moved: list[Moved] = field(default_factory=list)
    pairs: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    cost_before: float = 0.0
    cost_after: float = 0.0
    unpriced: int = 0  # decisions whose old or new winner has no estimated cost
    unreadable: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions, "moved": len(self.moved),
            "pairs": [{"from": a, "to": b, "count": n} for (a, b), n in
                      sorted(self.pairs.items(), key=lambda kv: (-kv[1], str(kv[0])))],
            "est_cost_usd": {"before": round(self.cost_before, 9),
                             "after": round(self.cost_after, 9),
                             "change": round(self.cost_after - self.cost_before, 9),
                             "unpriced_decisions": self.unpriced},
            "unreadable": self.unreadable,
            "changes": [m.to_json() for m in self.moved],
        }


class WhatIf:
    """Re-decides stored decisions with the policy and/or catalog replaced."""

    def __init__(self, replayer: Replayer, policy: Policy | None = None,
                 catalog: Catalog | None = None) -> None:
        self.replayer = replayer
        self.policy = policy
        self.catalog = catalog

    def run(self, records: Iterable[StoredRecord]) -> DiffReport:
        report = DiffReport()
        for stored in records:
            report.decisions += 1
            try:
                moved = self.one(stored)
            except Exception as exc:  # a record this router cannot read is listed, not fatal
                report.unreadable.append(f"{stored.trace_id}: {type(exc).__name__}: {exc}")
                continue
            old, new, why, old_cost, new_cost = moved
            if old_cost is None or new_cost is None:
                report.unpriced += 1
            else:
                report.cost_before += old_cost
                report.cost_after += new_cost
            if old != new:
                report.moved.append(Moved(stored.trace_id, stored.at, old, new, why,
                                          old_cost, new_cost))
                report.pairs[(old, new)] += 1
        return report

    def one(self, stored: StoredRecord) -> tuple[str | None, str | None, str, float | None,
                                                  float | None]:
        body = stored.body
        old_policy = self.replayer.policy(body["policy"])
        old_catalog = self.replayer.catalog(body["catalog"])
        policy = self.policy or old_policy
        catalog = self.catalog or old_catalog
        features, live, at = self.replayer.inputs(body)
        decision = self.replayer.decider_for(policy, catalog).decide(features, live, at)
        old = body["decision"]["selected"]
        new = decision.selected
        old_cost = _cost(old_catalog.get(old) if old else None, features, old_policy)
        new_cost = _cost(catalog.get(new) if new else None, features, policy)
        why = "" if old == new else _why(decision, old, catalog)
        return old, new, why, old_cost, new_cost


def _cost(o: Offering | None, features: RequestFeatures, policy: Policy) -> float | None:
    if o is None:
        return None
    return est_cost(o, features.input_tokens, effective_max_output(o, features, policy))


def _why(decision: Decision, old: str | None, catalog: Catalog) -> str:
    if old is None:
        return "nothing was admissible before"
    o = catalog.get(old)
    if o is None:
        return f"`{old}` is not in the new catalog"
    failed = decision.failed_clauses(old)
    if failed:
        ev = decision.evaluator
        ptr = failed[0]
        more = f" (and {len(failed) - 1} more clause{'s' if len(failed) > 2 else ''})" \
            if len(failed) > 1 else ""
        return f"`{ptr}` now rejects `{old}`: {ev.reason(ptr, o, decision.context)}{more}"
    if decision.selected is None:
        return "nothing is admissible now"
    ranks = {r.offering_id: r.keys for r in decision.ranking}
    labels = [k.label() for k in decision.derivation.policy.rank]
    mine, theirs = ranks.get(old), ranks.get(decision.selected)
    if mine is None or theirs is None:
        return f"`{old}` is no longer among the candidates"
    for label, a, b in zip(labels, theirs, mine, strict=True):
        if a != b:
            return (f"`{decision.selected}` now ranks first on `{label}`: "
                    f"{_num(a)} against {_num(b)}")
    return f"tied on every rank key; `{decision.selected}` wins the tie by id"


def _num(v: float | None) -> str:
    return "unknown" if v is None else f"{v:.6g}"
