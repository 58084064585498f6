"""Reading records back: the full spec §10 record rebuilt from a stored row and its objects,
and replay — re-deciding a stored decision from its own policy, catalog snapshot, request
features, live values and time, and comparing with what was stored.

The rebuilt record is the live one: the decision is a pure function of those inputs, the row
holds a digest of the outcome it had, and a rebuild whose digest differs is reported, never
shown as if it were the record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from router.catalog.offerings import Catalog, build_catalog
from router.common.problems import RefusedError
from router.decide.decider import Decider, Decision
from router.engine.derive import derive
from router.explain.record import to_record
from router.explain.record_model import DecisionRecord
from router.live.state import Layered, LiveState, LiveValues
from router.policy.admit import admit
from router.policy.terms import Policy
from router.records.canonical import normal
from router.records.row import READABLE_SCHEMAS, decision_summary, outcome_digest
from router.records.store import RecordsError, RecordStore, StoredRecord
from router.request.features import RequestFeatures


@dataclass(frozen=True)
class Replayed:
    trace_id: str
    status: str  # same | differs | other_ruleset | unreadable
    detail: str = ""
    decision: Decision | None = None


K = TypeVar("K")
V = TypeVar("V")


def _cached(cache: OrderedDict[K, V], key: K, make: Callable[[], V], capacity: int) -> V:
    """`cache[key]`, made on a miss; the least recently used entries beyond `capacity` go."""
    found = cache.get(key)
    if found is None:
        found = cache[key] = make()
        while len(cache) > capacity:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return found


class Replayer:
    """Re-decides stored decisions; derivations are shared by records with the same policy
    and catalog snapshot (a few cached)."""

    def __init__(self, store: RecordStore, capacity: int = 8) -> None:
        self.store = store
        self._capacity = capacity
        self._deciders: OrderedDict[tuple[str, str, frozenset[str]], Decider] = OrderedDict()
        self._objects: OrderedDict[str, Any] = OrderedDict()
        self._catalogs: OrderedDict[str, Catalog] = OrderedDict()
        self._policies: OrderedDict[str, Policy] = OrderedDict()

    def load(self, key: str) -> Any:
        """A stored object (policy term, catalog snapshot, live layer), cached."""
        return _cached(self._objects, key, lambda: self.store.load_object(key), 64)

    def catalog(self, key: str) -> Catalog:
        """A stored catalog snapshot, validated once per key (a few kept)."""
        def make() -> Catalog:
            obj = self.load(key)
            catalog = build_catalog(obj["catalog"], f"stored catalog {key}")
            return dataclasses.replace(catalog, disabled=frozenset(obj["disabled"]))

        return _cached(self._catalogs, key, make, self._capacity)

    def policy(self, key: str) -> Policy:
        """A stored policy, admitted once per key."""
        return _cached(self._policies, key, lambda: admit(self.load(key)), 64)

    def decider_for(self, policy: Policy, catalog: Catalog) -> Decider:
        """A decider over a derivation of `policy` on `catalog` (a few kept)."""
        return _cached(self._deciders, (policy.hash, catalog.version, catalog.disabled),
                       lambda: Decider(derive(policy, catalog)), self._capacity)

    def _decider(self, body: dict[str, Any]) -> Decider:
        catalog = self.catalog(body["catalog"])
        if catalog.version != body["catalog_version"]:
            raise RecordsError("records.catalog_mismatch", self.store.where,
                               f"the stored catalog snapshot has version {catalog.version}, "
                               f"the record says {body['catalog_version']}")
        return self.decider_for(self.policy(body["policy"]), catalog)

    def inputs(self, body: dict[str, Any]) -> tuple[RequestFeatures, LiveState, dt.datetime]:
        """What the stored decision was decided on besides policy and catalog: the request's
        features, the live values (its stored layers, first wins) and the time."""
        layers = [{oid: LiveValues(**v) for oid, v in self.load(k).items()}
                  for k in body["live"]["layers"]]
        live = LiveState(Layered(*layers), consulted=body["live"]["consulted"])
        return (RequestFeatures(**body["request_features"]), live,
                dt.datetime.fromisoformat(body["at"]))

    def decide(self, stored: StoredRecord) -> Decision:
        body = stored.body
        if body.get("schema") not in READABLE_SCHEMAS:
            raise RecordsError("records.schema", self.store.where,
                               f"record `{stored.trace_id}` has row schema "
                               f"{body.get('schema')!r}; this router reads "
                               f"{', '.join(map(str, READABLE_SCHEMAS))}")
        return self._decider(body).decide(*self.inputs(body))

    def replay(self, stored: StoredRecord) -> Replayed:
        body = stored.body
        try:
            decider = self._decider(body)
            if decider.d.ruleset_version != body["ruleset_version"]:
                return Replayed(stored.trace_id, "other_ruleset",
                                f"written under ruleset {body['ruleset_version']}; this router "
                                f"has {decider.d.ruleset_version}")
            decision = self.decide(stored)
        except (RefusedError, KeyError, TypeError, ValueError) as exc:
            return Replayed(stored.trace_id, "unreadable", f"{type(exc).__name__}: {exc}")
        want = body["decision"]
        if outcome_digest(decision, body["schema"]) == want["digest"]:
            return Replayed(stored.trace_id, "same", decision=decision)
        return Replayed(stored.trace_id, "differs", _difference(want, decision), decision)

    def record(self, stored: StoredRecord, proofs: bool = True) -> dict[str, Any]:
        """The full record, as the live decision produced it (as JSON data)."""
        replayed = self.replay(stored)
        if replayed.decision is None or replayed.status != "same":
            raise RecordsError("records.not_reproducible", self.store.where,
                               f"record `{stored.trace_id}` cannot be rebuilt: "
                               f"{replayed.status}: {replayed.detail}",
                               "`unhardcoded trace show ID --stored` shows what was stored")
        body = stored.body
        record = to_record(replayed.decision, stored.trace_id, full_proofs=proofs,
                           dispatch=body.get("dispatch"), config_hash=body["config_hash"])
        return normal(record)  # type: ignore[no-any-return]

    def record_model(self, stored: StoredRecord, proofs: bool = True) -> DecisionRecord:
        """`record` as the typed model."""
        return DecisionRecord.of(self.record(stored, proofs))


def _difference(want: dict[str, Any], decision: Decision) -> str:
    got = decision_summary(decision)
    parts = []
    if want["selected"] != got["selected"]:
        parts.append(f"winner {want['selected']} -> {got['selected']}")
    if want["cascade"] != got["cascade"]:
        parts.append(f"cascade {want['cascade']} -> {got['cascade']}")
    if want["admissible"] != len(got["ranking"]):
        parts.append(f"admissible {want['admissible']} -> {len(got['ranking'])}")
    head = [[oid, list(keys)] for oid, keys in got["ranking"][:len(want["ranking_head"])]]
    if head != want["ranking_head"]:
        parts.append("ranking head differs")
    if want["rejected_per_request"] != len(got["late"]):
        parts.append(f"rejected per request {want['rejected_per_request']} -> "
                     f"{len(got['late'])}")
    return "; ".join(parts) or "the rankings' key values or rejected clauses differ"
