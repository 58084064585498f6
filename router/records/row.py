"""What one decision stores: a small per-request row, and the content-addressed objects it
references (the policy, the catalog snapshot, the live layers it read).

The row holds what changes per request — trace id, time, request features, the decision's
head (winner, cascade, the first ranks) and a digest of its full outcome, mutations' call
parameters, the dispatch account (attempts, usage, cost, latency, outcome). Everything the
request shares with other requests is an object stored once under its hash. The full spec §10
record is rebuilt from both on read (`records.rebuild`), and the digest proves it is the same
decision.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from router.catalog.offerings import Catalog
from router.decide.decider import Decision
from router.live.state import LiveValues, flat_layers
from router.records.canonical import digest

ROW_SCHEMA = 2  # 2: hashes over canonical form 2 (orjson's); 1: over form 1 (`canonical`)
READABLE_SCHEMAS = (1, 2)
RANKING_HEAD = 10


@dataclass(frozen=True)
class Pending:
    """A decision waiting for the writer: everything it needs, nothing computed yet."""

    decision: Decision
    trace_id: str
    config_hash: str
    dispatch: dict[str, Any] | None = None  # `Outcome.to_json()` when a call was made
    outcome: str = "routed"  # routed | ok | failed | cancelled | no_admissible
    policy_name: str | None = None
    messages: Any = None  # the request's messages: digested by the writer, stored if asked
    store_content: bool = False
    caller: dict[str, Any] | None = None  # who asked (the service's key id, team, labels)
    ack: Future[bool] | None = None  # set True once committed, False if it could not be


@dataclass
class StoredObject:
    key: str
    kind: str  # policy | catalog | live
    body: Any


@dataclass
class Row:
    trace_id: str
    at: str  # UTC, microseconds: sorts as text
    policy_hash: str
    policy_name: str | None
    catalog_version: str
    ruleset_version: str
    selected: str | None
    served_by: str | None
    outcome: str
    objects: list[str]
    body: dict[str, Any]
    new_objects: list[StoredObject] = field(default_factory=list)


def utc_text(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def outcome_digest(decision: Decision, schema: int) -> str:
    """The hash of everything replay compares: the admissible set in rank order with its key
    values, the winner, the cascade, and the candidates rejected per request with their
    failed clauses (those a label test struck follow from the stored labels); taken over the
    canonical form of row schema `schema`."""
    return digest(decision_summary(decision), schema)


def decision_summary(decision: Decision) -> dict[str, Any]:
    """What `outcome_digest` hashes. The ranking's pairs are plain tuples
    (`Decision.ranked_pairs`): their canonical JSON is the same array as a list's."""
    return {
        "ranking": decision.ranked_pairs,
        "selected": decision.selected,
        "cascade": list(decision.cascade),
        "late": {oid: list(p) for oid, p in sorted(decision.rejected_in_view.items())},
    }


class Snapshots:
    """Content keys of the objects decisions share, memoised by identity (a catalog version,
    a live layer that is the same dict object) so a decision hashes only what is new."""

    def __init__(self, capacity: int = 32) -> None:
        self._layers: OrderedDict[int, tuple[Mapping[str, LiveValues], str, dict[str, Any]]] = \
            OrderedDict()
        self._catalogs: dict[tuple[str, frozenset[str]], tuple[str, Catalog]] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def catalog(self, catalog: Catalog) -> tuple[str, Catalog]:
        key = (catalog.version, catalog.disabled)
        with self._lock:
            found = self._catalogs.get(key)
            if found is None:
                found = self._catalogs[key] = (
                    "catalog-" + digest([catalog.version, sorted(catalog.disabled)])[:32],
                    catalog)
                if len(self._catalogs) > self._capacity:
                    self._catalogs.pop(next(iter(self._catalogs)))
            return found

    def layer(self, layer: Mapping[str, LiveValues]) -> tuple[str, dict[str, Any]]:
        with self._lock:
            found = self._layers.get(id(layer))
            if found is not None and found[0] is layer:
                self._layers.move_to_end(id(layer))
                return found[1], found[2]
        body = {oid: v.model_dump(exclude_none=True) for oid, v in sorted(layer.items())}
        key = "live-" + digest(body)[:32]
        with self._lock:
            self._layers[id(layer)] = (layer, key, body)
            while len(self._layers) > self._capacity:
                self._layers.popitem(last=False)
        return key, body


def catalog_object(catalog: Catalog) -> dict[str, Any]:
    return {"catalog": catalog.to_json(), "disabled": sorted(catalog.disabled)}


def content_of(messages: Any, store: bool) -> dict[str, Any]:
    """The message content as a record holds it: its SHA-256 over canonical JSON (the row
    schema's form), and the messages themselves only when storing content was asked for."""
    out: dict[str, Any] = {"sha256": digest(messages, ROW_SCHEMA)}
    if store:
        out["messages"] = messages
    return out


def build_row(p: Pending, snapshots: Snapshots) -> Row:
    """The row and the objects it references (all of them; the store skips known ones)."""
    decision = p.decision
    d = decision.derivation
    ctx = decision.context
    objects: list[StoredObject] = [StoredObject(d.policy.hash, "policy", d.policy.term)]
    catalog_key, catalog = snapshots.catalog(d.catalog)
    objects.append(StoredObject(catalog_key, "catalog", catalog))  # serialised lazily
    layers = []
    for layer in flat_layers(ctx.live.values):
        key, values = snapshots.layer(layer)
        layers.append(key)
        objects.append(StoredObject(key, "live", values))
    ranking = decision.ranked_pairs
    body: dict[str, Any] = {
        "schema": ROW_SCHEMA,
        "trace_id": p.trace_id,
        "at": ctx.at.isoformat(),
        "config_hash": p.config_hash,
        "policy": d.policy.hash,
        "catalog": catalog_key,
        "catalog_version": d.catalog.version,
        "ruleset_version": d.ruleset_version,
        "live": {"consulted": ctx.live.consulted, "layers": layers},
        "request_features": ctx.features.model_dump(mode="json"),
        "decision": {
            "selected": decision.selected,
            "cascade": list(decision.cascade),
            "admissible": len(ranking),
            "ranking_head": [[oid, list(keys)] for oid, keys in ranking[:RANKING_HEAD]],
            "rejected_per_request": len(decision.rejected_in_view),
            "digest": outcome_digest(decision, ROW_SCHEMA),
        },
        "outcome": p.outcome,
        "dispatch": p.dispatch,
    }
    if p.policy_name is not None:
        body["policy_name"] = p.policy_name
    if p.caller is not None:
        body["caller"] = p.caller
    if p.messages is not None:
        body["content"] = content_of(p.messages, p.store_content)
    served_by = p.dispatch.get("served_by") if p.dispatch else None
    return Row(trace_id=p.trace_id, at=utc_text(ctx.at), policy_hash=d.policy.hash,
               policy_name=p.policy_name, catalog_version=d.catalog.version,
               ruleset_version=d.ruleset_version, selected=decision.selected,
               served_by=served_by, outcome=p.outcome,
               objects=[o.key for o in objects], body=body, new_objects=objects)
