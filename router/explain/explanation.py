"""Explain: why an offering was rejected, admitted, or admitted but outranked — with proofs.

For a rejection it also proposes the smallest change to the policy that would admit the
offering, and checks the proposal by deciding again on the changed policy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from router.catalog.offerings import Catalog, Offering
from router.common.problems import pointer_tokens
from router.decide.decider import Decider, Decision
from router.decide.evaluate import Evaluator
from router.engine.derive import derive
from router.explain.proof import Proof, proof_of
from router.explain.record import clause_term
from router.policy.compare import INCLUSIVE
from router.policy.terms import Cmp, Evidence, Member, SetOp, When
from router.policy.truth import Truth

MAX_MATCHES = 50


@dataclass(frozen=True)
class FailedClause:
    pointer: str
    clause: Any
    reason: str
    stage: str  # "derive" (catalog facts alone) or "decide" (this request / live state)
    proof: Proof


@dataclass(frozen=True)
class Explanation:
    offering: str
    verdict: str  # rejected | selected | cascade | outranked
    failed: tuple[FailedClause, ...] = ()
    passed: tuple[tuple[str, str], ...] = ()  # (pointer, reason) for admitted offerings
    rank_position: int | None = None
    keys: dict[str, Any] = field(default_factory=dict)
    winner: str | None = None
    winner_keys: dict[str, Any] = field(default_factory=dict)
    changes: tuple[str, ...] = ()
    change_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "offering": self.offering, "verdict": self.verdict,
            "failed": [{"pointer": f.pointer, "clause": f.clause, "reason": f.reason,
                        "stage": f.stage, "proof": f.proof.to_json()} for f in self.failed],
            "passed": [{"pointer": p, "reason": r} for p, r in self.passed],
            "rank_position": self.rank_position, "keys": self.keys, "winner": self.winner,
            "winner_keys": self.winner_keys, "smallest_change": list(self.changes),
            "change_note": self.change_note,
        }


def matching(catalog: Catalog, name: str) -> list[Offering]:
    exact = catalog.get(name)
    if exact is not None:
        return [exact]
    return [o for o in catalog if o.model == name][:MAX_MATCHES]


def explain_offering(decision: Decision, name: str) -> list[Explanation]:
    d = decision.derivation
    return [explain_one(decision, o) for o in matching(d.catalog, name)]


def explain_one(decision: Decision, o: Offering) -> Explanation:
    d = decision.derivation
    ev = decision.evaluator
    labels = [k.label() for k in d.policy.rank]
    failed_ptrs = decision.failed_clauses(o.id)
    if failed_ptrs:
        failed = []
        for ptr in failed_ptrs:
            stage = "derive" if ptr in d.rejected.get(o.id, ()) else "decide"
            ctx = decision.context if stage == "decide" else None
            failed.append(FailedClause(ptr, clause_term(d, ptr), ev.reason(ptr, o, ctx), stage,
                                       proof_of(d, ptr, o.id)))
        changes, note = smallest_change(decision, o, failed)
        return Explanation(o.id, "rejected", tuple(failed), changes=changes, change_note=note)
    position = decision.admissible.index(o.id)
    ranked = decision.ranking[position]
    winner = decision.ranking[0]
    verdict = ("selected" if o.id == decision.selected
               else "cascade" if o.id in decision.cascade else "outranked")
    passed = tuple((n.pointer, ev.reason(n.pointer, o, decision.context)) for n in d.top_nodes)
    return Explanation(
        o.id, verdict, passed=passed, rank_position=position + 1,
        keys=dict(zip(labels, ranked.keys, strict=True)), winner=winner.offering_id,
        winner_keys=dict(zip(labels, winner.keys, strict=True)),
    )


def smallest_change(decision: Decision, o: Offering, failed: list[FailedClause]
                    ) -> tuple[tuple[str, ...], str | None]:
    """Per failed clause, the least relaxation; verified by deciding again on the new policy."""
    d = decision.derivation
    if any(f.pointer.startswith("builtin:") for f in failed):
        names = ", ".join(f.pointer for f in failed if f.pointer.startswith("builtin:"))
        return (), f"no policy change can admit it: built-in clauses failed ({names})"
    term = copy.deepcopy(d.policy.term)
    changes: list[str] = []
    ev = decision.evaluator
    removals: list[str] = []
    for f in failed:
        text = _relax(d, ev, decision, o, term, f.pointer, removals)
        changes.append(text)
    for ptr in sorted(removals, key=_pointer_index, reverse=True):
        parent, index = ptr.rsplit("/", 1)
        container = _get(term, parent)
        if parent == "/2" or (container and container[0] in ("any", "all")
                              and len(container) > 2):
            del container[int(index)]
        else:
            return tuple(changes), "no verified change: the clause sits inside a term that " \
                "cannot lose it"
    if _admits(term, decision, o):
        return tuple(changes), None
    return tuple(changes), "these changes alone do not admit it (other clauses interact)"


def _relax(d: Any, ev: Evaluator, decision: Decision, o: Offering, term: Any, pointer: str,
           removals: list[str]) -> str:
    """Relax the clause at `pointer` in `term` just enough for `o`; describe the change."""
    node = d.program.node(pointer)
    clause = node.clause
    truth, _, witness = d.verdicts[pointer][o.id]
    if truth == Truth.R:
        truth = ev.truth(pointer, o, decision.context)
    if isinstance(clause, When) and truth == Truth.F:
        return _relax(d, ev, decision, o, term, node.children[1], removals)
    if truth == Truth.F and isinstance(clause, Cmp) and isinstance(clause.value, int | float) \
            and isinstance(witness, int | float) and not isinstance(witness, bool) \
            and clause.op in ("<", "<=", ">", ">="):
        new_op = INCLUSIVE[clause.op]
        word = "ceiling" if clause.op in ("<", "<=") else "floor"
        verb = "raise" if word == "ceiling" else "lower"
        _set(term, pointer, [new_op, clause.attr, witness])
        shown = f" (and make it `{new_op}`)" if new_op != clause.op else ""
        return (f"{verb} the `{clause.attr}` {word} at {pointer} from "
                f"{clause.value} to {witness}{shown}")
    if truth == Truth.F and isinstance(clause, Member) and not clause.negated:
        _get(term, pointer)[2].append(witness)
        return f"add `{witness}` to the `{clause.attr}` list at {pointer}"
    if truth == Truth.F and _removable(clause, witness):
        _get(term, pointer)[2].remove(witness)
        name = getattr(clause, "attr", "")
        return f"remove `{witness}` from the `{name}` list at {pointer}"
    if truth == Truth.F and isinstance(clause, Evidence) and isinstance(witness, float):
        new_op = INCLUSIVE[clause.op]
        _set(term, pointer, ["ev", clause.metric, new_op, witness])
        return (f"change the `{clause.metric}` evidence threshold at {pointer} from "
                f"{clause.number} to {witness}")
    removals.append(pointer)
    why = " (unknown fails closed; add the fact to the catalog instead)" if truth == Truth.U else ""
    return f"remove the clause at {pointer}{why}"


def _removable(clause: object, witness: object) -> bool:
    """A failing list clause that still has other values once the witness is removed."""
    if isinstance(clause, Member):
        return clause.negated and len(clause.values) > 1
    return (isinstance(clause, SetOp) and isinstance(witness, str) and bool(witness)
            and clause.op in ("has_all", "has_none") and isinstance(clause.values, tuple)
            and len(clause.values) > 1)


def _admits(term: Any, decision: Decision, o: Offering) -> bool:
    from router.common.problems import PolicyError
    from router.policy.admit import admit

    try:
        policy = admit(term)
    except PolicyError:
        return False
    single = Catalog((o,), "explain", decision.derivation.catalog.version)
    ctx = decision.context
    again = Decider(derive(policy, single)).decide(ctx.features, ctx.live, ctx.at)
    return o.id in again.admissible


def _pointer_index(ptr: str) -> tuple[int, ...]:
    return tuple(int(t) for t in pointer_tokens(ptr) if t.isdigit())


def _get(term: Any, pointer: str) -> Any:
    node = term
    for token in pointer_tokens(pointer):
        node = node[int(token)]
    return node


def _set(term: Any, pointer: str, value: Any) -> None:
    parent, index = pointer.rsplit("/", 1)
    _get(term, parent)[int(index)] = value
