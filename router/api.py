"""The library surface: a `Router` over one catalog, and one-shot helpers.

    router = Router()                        # embedded catalog
    result = router.route(policy, request)   # decision + record (dry run)
    why = router.explain(policy, "openai/gpt-4o", request)
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.admit import admit, admit_text
from router.decide import Decider, Decision
from router.derive import Derivation, DerivationCache
from router.explain import Explanation, explain_offering
from router.features import RequestFeatures, parse_request
from router.live import LiveState, from_environment
from router.offerings import Catalog, default_catalog, load_catalog
from router.record import to_record
from router.terms import Policy

Clock = Callable[[], dt.datetime]
PolicyInput = Policy | str | bytes | list[Any]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_trace_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RouteResult:
    decision: Decision
    trace_id: str

    @property
    def selected(self) -> str | None:
        return self.decision.selected

    @property
    def cascade(self) -> tuple[str, ...]:
        return self.decision.cascade

    def record(self, proofs: bool = True) -> dict[str, Any]:
        return to_record(self.decision, self.trace_id, full_proofs=proofs)


def as_policy(policy: PolicyInput) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str | bytes):
        return admit_text(policy)
    return admit(policy)


def as_features(request: Mapping[str, Any] | RequestFeatures) -> RequestFeatures:
    if isinstance(request, RequestFeatures):
        return request
    return parse_request(dict(request)).features


class Router:
    """Decides over one catalog snapshot; derivations are cached per policy hash."""

    def __init__(self, catalog: Catalog | str | Path | None = None, *,
                 clock: Clock = utc_now, trace_ids: Callable[[], str] = new_trace_id) -> None:
        if catalog is None:
            catalog = default_catalog()
        elif not isinstance(catalog, Catalog):
            catalog = load_catalog(catalog)
        self.catalog = catalog
        self.clock = clock
        self.trace_ids = trace_ids
        self.cache = DerivationCache()
        self._deciders: dict[tuple[str, str, str], Decider] = {}

    def register(self, policy: PolicyInput) -> Policy:
        """Admit a policy and start deriving it in the background."""
        p = as_policy(policy)
        self.cache.prefetch(p, self.catalog)
        return p

    def derivation(self, policy: PolicyInput) -> Derivation:
        return self.cache.get(as_policy(policy), self.catalog)

    def decider(self, policy: PolicyInput) -> Decider:
        d = self.derivation(policy)
        if d.key not in self._deciders:
            self._deciders[d.key] = Decider(d)
        return self._deciders[d.key]

    def live_from_environment(self, environ: Mapping[str, str] | None = None) -> LiveState:
        return from_environment(((o.id, o.provider) for o in self.catalog), environ)

    def route(self, policy: PolicyInput, request: Mapping[str, Any] | RequestFeatures,
              live: LiveState | None = None) -> RouteResult:
        """A dry-run decision (no provider is called)."""
        features = as_features(request)
        decision = self.decider(policy).decide(features, live or LiveState.not_consulted(),
                                               self.clock())
        return RouteResult(decision, self.trace_ids())

    def explain(self, policy: PolicyInput, offering: str,
                request: Mapping[str, Any] | RequestFeatures | None = None,
                live: LiveState | None = None) -> list[Explanation]:
        """Why each offering matching `offering` (an id, or a model name) was or was not chosen."""
        req = request if request is not None else {"messages": [{"role": "user", "content": ""}]}
        result = self.route(policy, req, live)
        return explain_offering(result.decision, offering)

    def close(self) -> None:
        self.cache.close()


def load_json_file(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
