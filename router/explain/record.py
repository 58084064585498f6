"""The decision record (spec §10): everything needed to replay a decision, as JSON.

Proofs of static verdicts come from the derivation; clauses finished per request carry their
residual evaluation. `replay` re-derives from the record's own policy, catalog snapshot, live
values, request features and time, and must reproduce admissible, ranking, selected and cascade.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from router.catalog.offerings import Catalog, Offering
from router.decide.decider import Decider, Decision
from router.decide.evaluate import Context
from router.engine.derive import Derivation, derive
from router.explain.proof import proof_of
from router.explain.record_model import RECORD_VERSION
from router.live.state import LiveState, LiveValues
from router.policy.terms import render
from router.policy.truth import Truth
from router.request.features import RequestFeatures
from router.request.tokens import ESTIMATOR

MAX_LISTED_PER_OFFERING = 8  # failed clauses listed per rejected offering
MAX_PROOFS = 20_000  # entries (rejections and admissions) that carry a full proof


def clause_term(d: Derivation, pointer: str) -> Any:
    return render(d.program.node(pointer).clause)


def rejection_entries(decision: Decision, offering_id: str, full_proofs: bool = True,
                      limit: int | None = None) -> list[dict[str, Any]]:
    """Every failed clause of a rejected offering (the first `limit`), in program order."""
    d = decision.derivation
    o = d.catalog.get(offering_id)
    assert o is not None
    ev = decision.evaluator
    out: list[dict[str, Any]] = []
    for ptr in decision.failed_clauses(offering_id)[:limit]:
        static = d.verdicts[ptr][offering_id][0] != Truth.R
        if static:  # request-independent: built once per derivation
            key = (ptr, offering_id, full_proofs)
            entry = ev.memo.get(key)
            if entry is None:
                entry = ev.memo[key] = _entry(decision, ptr, o, None, "derive", full_proofs)
            out.append(dict(entry))
        elif ptr == "builtin:status_available":  # depends on the live values alone
            values = decision.context.live.of(offering_id)
            key2 = (ptr, offering_id, full_proofs, values)
            entry = ev.memo.get(key2)
            if entry is None:
                entry = _entry(decision, ptr, o, decision.context, "decide", full_proofs)
                _remember(ev.memo, key2, entry)
            out.append(dict(entry))
        elif ev.labels_only(ptr, o):  # depends on the request's labels alone
            key3 = (ptr, offering_id, full_proofs, decision.context.features.labels)
            entry = ev.memo.get(key3)
            if entry is None:
                entry = _entry(decision, ptr, o, decision.context, "decide", full_proofs)
                _remember(ev.memo, key3, entry)
            out.append(dict(entry))
        else:
            out.append(_entry(decision, ptr, o, decision.context, "decide", full_proofs))
    return out


MAX_MEMO = 500_000  # entries per derivation; past it, entries are built and not kept


def _remember(memo: dict[tuple[Any, ...], Any], key: tuple[Any, ...], entry: Any) -> None:
    if len(memo) < MAX_MEMO:
        memo[key] = entry


def _entry(decision: Decision, ptr: str, o: Offering, ctx: Context | None, stage: str,
           full_proofs: bool) -> dict[str, Any]:
    d = decision.derivation
    entry: dict[str, Any] = {"pointer": ptr, "clause": clause_term(d, ptr),
                             "reason": decision.evaluator.reason(ptr, o, ctx), "stage": stage}
    if full_proofs:
        entry["proof"] = proof_of(d, ptr, o.id).to_json()
    if ctx is not None:  # finished per request: the values it compared
        entry["finished"] = decision.evaluator.finish(ptr, o, ctx)
    return entry


def admission_entries(decision: Decision, offering_id: str) -> list[dict[str, Any]]:
    d = decision.derivation
    o = d.catalog.get(offering_id)
    assert o is not None
    ev = decision.evaluator
    out = []
    for node in d.top_nodes:
        truth = d.verdicts[node.pointer][offering_id][0]
        entry: dict[str, Any] = {"pointer": node.pointer, "stage": "derive" if truth == Truth.T
                                 else "decide", "proof": proof_of(d, node.pointer,
                                                                  offering_id).to_json()}
        entry["reason"] = ev.reason(node.pointer, o, decision.context)
        if truth == Truth.R:
            entry["finished"] = ev.finish(node.pointer, o, decision.context)
        out.append(entry)
    return out


_DEFAULT_LIVE = LiveValues()
_DUMPED: dict[LiveValues, dict[str, Any]] = {}


def live_values_read(decision: Decision) -> dict[str, dict[str, Any]]:
    """Every catalog offering's live values that differ from the default (the rejections of
    offerings the derivation struck may quote them too), sorted by id."""
    d = decision.derivation
    values = decision.context.live.values
    out: dict[str, dict[str, Any]] = {}
    for oid in sorted(values):
        v = values.get(oid)
        if v is None or v == _DEFAULT_LIVE or d.catalog.get(oid) is None:
            continue
        dumped = _DUMPED.get(v)
        if dumped is None:
            dumped = v.model_dump(exclude_none=True)
            if len(_DUMPED) < 10_000:
                _DUMPED[v] = dumped
        out[oid] = dict(dumped)
    return out


def to_record(decision: Decision, trace_id: str, full_proofs: bool = True,
              dispatch: dict[str, Any] | None = None, config_hash: str = "") -> dict[str, Any]:
    """The record; `dispatch` (attempts, served_by, usage, cost, latency) when a call was made."""
    d = decision.derivation
    ctx = decision.context
    rank_labels = [k.label() for k in d.policy.rank]
    live_read = live_values_read(decision)
    limits = RecordLimits(full_proofs)
    rejected = {oid: limits.rejections(decision, oid) for oid in decision.rejected_ids()}
    admissible = [{"offering": oid, "clauses": limits.admissions(decision, oid)}
                  for oid in decision.admissible]
    record: dict[str, Any] = {
        "record_version": RECORD_VERSION,
        "trace_id": trace_id,
        "at": ctx.at.isoformat(),
        "policy_hash": d.policy.hash,
        "policy": d.policy.term,
        "catalog_version": d.catalog.version,
        "ruleset_version": d.ruleset_version,
        "config_hash": config_hash,
        "request_features": ctx.features.model_dump(),
        "input_tokens_estimator": {"name": ESTIMATOR, "upper_bound": True},
        "live": {"consulted": ctx.live.consulted, "values": live_read,
                 "default": LiveValues().model_dump(exclude_none=True)},
        "candidates": [o.id for o in d.catalog],
        "rejected": rejected,
        "admissible": admissible,
        "ranking": [
            {"offering": r.offering_id,
             "keys": [{"key": lab, "value": v} for lab, v in zip(rank_labels, r.keys,
                                                               strict=True)]}
            for r in decision.ranking
        ],
        "selected": decision.selected,
        "cascade": list(decision.cascade),
        "mutations": [
            {"pointer": m.pointer, "op": m.op, "param": m.param, "value": m.value}
            for m in d.policy.mutations
        ],
        "calls": [{"offering": c.offering_id, "params": c.params} for c in decision.calls],
        "fallback": {
            "on": list(d.policy.fallback.on), "retry": d.policy.fallback.retries,
            "backoff_ms": d.policy.fallback.backoff_ms,
            "timeout_ms": d.policy.fallback.timeout_ms, "then": d.policy.fallback.then,
        },
    }
    if limits.omitted_rejections or limits.omitted_proofs:
        record["omitted"] = {"rejections": limits.omitted_rejections,
                             "proofs": limits.omitted_proofs,
                             "why": f"a record lists at most {MAX_LISTED_PER_OFFERING} failed "
                                    f"clauses per offering and {MAX_PROOFS} proofs; "
                                    "`explain` gives any offering's in full"}
    if dispatch is not None:
        record.update(dispatch)
    return record


class RecordLimits:
    """What one record may hold, whatever the policy: an admitted policy of ~100 clauses over
    the embedded catalog would otherwise put 300,000 rejections with their proofs (~100 MB) in
    one record. Past the limits, entries are left out (or kept without their proof), counted,
    and the record says so under `omitted`."""

    def __init__(self, full_proofs: bool) -> None:
        self.proofs_left = MAX_PROOFS if full_proofs else 0
        self.full_proofs = full_proofs
        self.omitted_rejections = 0
        self.omitted_proofs = 0

    def rejections(self, decision: Decision, oid: str) -> list[dict[str, Any]]:
        proofs = self.proofs_left > 0
        entries = rejection_entries(decision, oid, proofs, MAX_LISTED_PER_OFFERING)
        if len(entries) == MAX_LISTED_PER_OFFERING:  # perhaps more: count them
            self.omitted_rejections += len(decision.failed_clauses(oid)) - len(entries)
        self._spend(proofs, len(entries))
        return entries

    def admissions(self, decision: Decision, oid: str) -> list[dict[str, Any]]:
        if not self.full_proofs:
            return []
        if self.proofs_left <= 0:
            self.omitted_proofs += len(decision.derivation.top_nodes)
            return []
        entries = admission_entries(decision, oid)
        self._spend(True, len(entries))
        return entries

    def _spend(self, proofs: bool, n: int) -> None:
        if proofs:
            self.proofs_left -= n
        elif self.full_proofs:
            self.omitted_proofs += n


def replay(record: dict[str, Any], catalog: Catalog) -> Decision:
    """Re-derive and re-decide from the record; the catalog must be the recorded snapshot."""
    from router.policy.admit import admit

    if catalog.version != record["catalog_version"]:
        raise ValueError(f"record was decided on catalog {record['catalog_version']}, "
                         f"not {catalog.version}")
    policy = admit(record["policy"])
    derivation = derive(policy, catalog)
    if derivation.ruleset_version != record["ruleset_version"]:
        raise ValueError(f"record used ruleset {record['ruleset_version']}, "
                         f"this router has {derivation.ruleset_version}")
    live = LiveState(
        {oid: LiveValues(**v) for oid, v in record["live"]["values"].items()},
        consulted=record["live"]["consulted"],
    )
    features = RequestFeatures(**record["request_features"])
    at = dt.datetime.fromisoformat(record["at"])
    return Decider(derivation).decide(features, live, at)


def same_decision(record: dict[str, Any], decision: Decision) -> bool:
    return (
        [a["offering"] for a in record["admissible"]] == list(decision.admissible)
        and [r["offering"] for r in record["ranking"]] == list(decision.admissible)
        and [[k["value"] for k in r["keys"]] for r in record["ranking"]]
        == [list(r.keys) for r in decision.ranking]
        and record["selected"] == decision.selected
        and record["cascade"] == list(decision.cascade)
    )
