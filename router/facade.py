"""The library surface: `Router`, a thin facade over objects that each own one concern.

    with Router() as router:                           # embedded catalog, keys from os.environ
        result = router.route(policy, request)         # decision + record (dry run)
        why = router.explain(policy, "openai/gpt-4o", request)
        done = router.complete_sync(policy, request)   # decide, call, fail over, account
        for chunk in router.stream_sync(policy, request): ...

    async with Router() as router:
        done = await router.complete(policy, request)
        async for chunk in await router.stream(policy, request): ...

Owned pieces: the admitted-policy memo (`policy.memo`), the catalog in force and its files
(`catalog.refresh.CatalogHolder`), derivations and deciders (`decide.deciders`), live state
(`dispatch.live_view`), the dispatcher, and the event-loop thread and client pools
(`dispatch.loop`). Settings come in one frozen `RouterConfig`, whose hash every record carries.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from router.catalog.offerings import Catalog, Offering
from router.catalog.refresh import CatalogHolder, ReloadReport, Watcher, log_reload
from router.common.problems import Problem, RequestError
from router.config import RouterConfig
from router.decide.decider import Decider, Decision
from router.decide.deciders import Deciders
from router.dispatch.completion import (
    Completion,
    CompletionStream,
    SyncCompletionStream,
    failed,
    no_admissible,
)
from router.dispatch.discovery import Discovery, discover
from router.dispatch.dispatcher import Dispatcher, Outcome
from router.dispatch.live_view import LiveView
from router.dispatch.loop import ClientPools, LoopThread
from router.dispatch.providers.base import Endpoint
from router.dispatch.providers.registry import Unreachable, resolve
from router.dispatch.reachability import from_environment, uncallable
from router.engine.cache import DerivationCache
from router.engine.derive import Derivation
from router.explain.explanation import Explanation, explain_offering
from router.explain.record import to_record
from router.explain.record_model import DecisionRecord
from router.live.health import HealthTracker
from router.live.state import Layered, LiveState, LiveValues, disabled_values
from router.policy.memo import AdmittedPolicies, PolicyInput
from router.policy.terms import Policy
from router.records import Pending, RecordsError, RecordWriter, recorder
from router.request.features import Request, RequestFeatures, features_of, parse_request


@dataclass(frozen=True)
class RouteResult:
    decision: Decision
    trace_id: str
    config_hash: str = ""

    @property
    def selected(self) -> str | None:
        return self.decision.selected

    @property
    def cascade(self) -> tuple[str, ...]:
        return self.decision.cascade

    def record(self, proofs: bool = True) -> dict[str, Any]:
        """The decision record's JSON form (spec §10)."""
        return to_record(self.decision, self.trace_id, full_proofs=proofs,
                         config_hash=self.config_hash)

    def record_model(self, proofs: bool = True) -> DecisionRecord:
        """The decision record as a typed model."""
        return DecisionRecord.of(self.record(proofs))


MAX_ENDPOINTS = 20_000  # resolved endpoints a router keeps (the embedded catalog has 3,189)
NOTHING_ADMISSIBLE = Outcome(stopped_because="nothing passed the filters")


def as_features(request: Mapping[str, Any] | RequestFeatures) -> RequestFeatures:
    return request if isinstance(request, RequestFeatures) else features_of(request)


class Router:
    """Decides over one catalog snapshot, calls providers over the user's own keys.

    `catalog`: a `Catalog`, a catalog file, or None for the embedded catalog; `overlays`:
    overlay files applied in order (files can be reloaded). `config`: settings and seams.
    """

    def __init__(self, catalog: Catalog | str | Path | None = None, *,
                 overlays: Iterable[str | Path] = (),
                 config: RouterConfig | None = None) -> None:
        self.config = config = config or RouterConfig()
        self.environ: dict[str, str] = dict(os.environ if config.environ is None
                                            else config.environ)
        self._endpoints: dict[tuple[object, ...], Endpoint | Unreachable] = {}
        self.catalogs = CatalogHolder(catalog, tuple(overlays))
        self.policies = AdmittedPolicies()
        self.deciders = Deciders(DerivationCache(processes=config.derive_in_processes,
                                                 timeout_s=config.derive_timeout_s))
        self.health = HealthTracker(config.clock, config.breaker)
        self.lives = LiveView(self.environ, self.health, self.endpoint)
        self._installed: tuple[str, dict[str, LiveValues]] | None = None
        self.dispatcher = Dispatcher(self.endpoint, self.health, config.clock,
                                     sleep=config.sleep, rng=config.rng, timer=config.timer,
                                     settings=config.dispatch)
        self.clients = ClientPools(config.max_connections, config.pool_shards, config.trust_env)
        self.loop = LoopThread()
        self.records: RecordWriter | None = recorder(config.records, self.environ)
        # Called with each decision, the seconds `decide` took and the policy's name (the
        # service's metrics); it must be quick and must not raise.
        self.on_decision: Callable[[Decision, float, str | None], None] | None = None

    # -- context manager ----------------------------------------------------------------------

    def __enter__(self) -> Router:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
        self.close()

    # -- deciding -----------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The catalog in force (swapped whole by `reload`)."""
        return self.catalogs.current

    def register(self, policy: PolicyInput) -> Policy:
        """Admit a policy and start deriving it in the background; a catalog reload derives
        every registered policy before the new version serves."""
        p = self.policies.admit(policy)
        self.deciders.register(p, self.catalog)
        return p

    def derivation(self, policy: PolicyInput, catalog: Catalog | None = None) -> Derivation:
        return self.deciders.derivation(self.policies.admit(policy), catalog or self.catalog)

    def decider(self, policy: PolicyInput, catalog: Catalog | None = None) -> Decider:
        return self.deciders.decider(self.policies.admit(policy), catalog or self.catalog)

    def route(self, policy: PolicyInput, request: Mapping[str, Any] | RequestFeatures,
              live: LiveState | None = None, *, policy_name: str | None = None,
              caller: Mapping[str, Any] | None = None) -> RouteResult:
        """A dry-run decision (no provider is called), recorded. Offerings disabled by an
        overlay are `disabled` whether or not live state is given."""
        catalog = self.catalog
        if isinstance(request, RequestFeatures):
            features, messages = request, None
        else:
            parsed = parse_request(request)
            features, messages = parsed.features, parsed.body.get("messages")
        state = self.installed_state(live, catalog)
        decision = self._decide(self.decider(policy, catalog), features, state, policy_name)
        result = RouteResult(decision, self.config.trace_ids(), self.config.hash)
        self._record(decision, result.trace_id, None, "routed", policy_name, messages, caller)
        return result

    def _decide(self, decider: Decider, features: RequestFeatures, state: LiveState,
                policy_name: str | None) -> Decision:
        timer = self.config.timer
        t0 = timer()
        decision = decider.decide(features, state, self.config.clock())
        if self.on_decision is not None:
            self.on_decision(decision, timer() - t0, policy_name)
        return decision

    def _record(self, decision: Decision, trace_id: str, outcome: Outcome | None, label: str,
                policy_name: str | None, messages: Any,
                caller: Mapping[str, Any] | None = None) -> None:
        """Queue the decision for the records writer (docs/records.md); costs ~1 µs here."""
        if self.records is None:
            return
        pending = Pending(decision, trace_id, self.config.hash,
                          outcome.to_json() if outcome is not None else None, label,
                          policy_name, messages, self.config.store_content,
                          dict(caller) if caller is not None else None)
        if not self.config.records_required:
            self.records.submit(pending)
        elif not self.records.write_now(pending):
            raise RecordsError("records.not_stored", self.records.store.where,
                               f"decision `{trace_id}` could not be recorded, and this router "
                               f"requires every decision recorded: {self.records.last_error}",
                               "see the store's error in the log; `records_required=False` "
                               "serves on without recording")

    def explain(self, policy: PolicyInput, offering: str,
                request: Mapping[str, Any] | RequestFeatures | None = None,
                live: LiveState | None = None) -> list[Explanation]:
        """Why each offering matching `offering` (an id, or a model name) was or was not chosen."""
        req = request if request is not None else {"messages": [{"role": "user", "content": ""}]}
        return explain_offering(self.route(policy, req, live).decision, offering)

    # -- live state ---------------------------------------------------------------------------

    def endpoint(self, offering: Offering) -> Endpoint | Unreachable:
        """Where an offering is called and with which key (or why it cannot be). A function of
        the offering's provider, base URL, key variable, region and model, and of this router's
        snapshot of the environment: resolved once, then kept (up to `MAX_ENDPOINTS`)."""
        api_model = offering.api_model or offering.model
        key = (offering.provider, offering.base_url, offering.api_key_env, offering.region,
               api_model)
        found = self._endpoints.get(key)
        if found is None:
            found = resolve(offering.provider, self.environ, offering.base_url,
                            offering.api_key_env, region=offering.region, api_model=api_model)
            if len(self._endpoints) >= MAX_ENDPOINTS:
                self._endpoints.clear()
            self._endpoints[key] = found
        return found

    def live(self, catalog: Catalog | None = None) -> LiveState:
        """The live state a dispatch decides on (see `router.dispatch.live_view`)."""
        return self.lives.of(catalog or self.catalog)

    def live_from_environment(self, environ: Mapping[str, str] | None = None) -> LiveState:
        """Keys only (no circuits, no discovery): what `--live` shows on the command line."""
        return self.installed_state(from_environment(self.catalog, environ))

    def installed_state(self, live: LiveState | None = None,
                        catalog: Catalog | None = None) -> LiveState:
        """`live` (not consulted when None) behind what holds whatever the environment is:
        offerings an overlay disabled (`disabled`) and offerings this installation has no
        adapter or extra for (`unsupported`). Dry runs decide on this, so they reject what
        `complete` could never call."""
        catalog = catalog or self.catalog
        cached = self._installed
        if cached is None or cached[0] != catalog.version:
            static = {**uncallable(catalog), **disabled_values(catalog)}
            cached = self._installed = (catalog.version, static)
        base = live or LiveState.not_consulted()
        return LiveState(Layered(cached[1], base.values), consulted=base.consulted)

    async def discover(self, providers: Iterable[str] | None = None,
                       timeout_s: float = 10.0) -> Discovery:
        """Ask each provider with a key which models it may use; the rest become
        `not_entitled` in `live()` (until the next discovery)."""
        catalog = self.catalog
        result = await discover(catalog, self.endpoint, self.clients.client(),
                                self.config.clock(), timeout_s, providers)
        return self.lives.remember(result, catalog)

    def discover_sync(self, providers: Iterable[str] | None = None,
                      timeout_s: float = 10.0) -> Discovery:
        return self.loop.submit(self.discover(providers, timeout_s)).result()

    # -- catalog refresh ----------------------------------------------------------------------

    def reload(self) -> ReloadReport:
        """Re-read the catalog and overlay files; derive every registered policy for the new
        version, then swap it in. A refused file changes nothing: the report lists why."""
        return self.catalogs.reload(self.deciders.prepare)

    def reload_in_background(self) -> Future[ReloadReport]:
        return self.catalogs.reload_in_background(self.deciders.prepare)

    def watch(self, interval_s: float = 2.0) -> Watcher:
        """Reload whenever the catalog or an overlay file changes (polled every `interval_s`)."""
        return self.catalogs.watch(self.reload, interval_s)

    def reload_on_sighup(self) -> None:
        """In a process that owns SIGHUP (call from the main thread): reload on SIGHUP."""
        def on_hup(_sig: int, _frame: object) -> None:
            self.reload_in_background().add_done_callback(log_reload)

        signal.signal(signal.SIGHUP, on_hup)

    # -- dispatch -----------------------------------------------------------------------------

    async def decider_async(self, policy: PolicyInput, catalog: Catalog | None = None
                            ) -> Decider:
        """`decider` without blocking the running event loop while a derivation runs."""
        return await self.deciders.decider_async(self.policies.admit(policy),
                                                 catalog or self.catalog)

    async def _decide_for_call(self, policy: PolicyInput, parsed: Request,
                               policy_name: str | None, caller: Mapping[str, Any] | None
                               ) -> tuple[Decision, str]:
        catalog = self.catalog
        decider = await self.deciders.decider_async(self.policies.admit(policy), catalog)
        decision = self._decide(decider, parsed.features, self.live(catalog), policy_name)
        trace_id = self.config.trace_ids()
        if decision.selected is None:
            refused = no_admissible(decision, trace_id, self.config.hash)
            self._record(decision, trace_id, NOTHING_ADMISSIBLE, "no_admissible", policy_name,
                         parsed.body.get("messages"), caller)
            raise refused
        return decision, trace_id

    async def complete(self, policy: PolicyInput, request: Mapping[str, Any], *,
                       policy_name: str | None = None,
                       caller: Mapping[str, Any] | None = None) -> Completion:
        """Decide, call the winner, fail over along the cascade, account for every attempt.

        Raises `RequestError`/`PolicyError` for bad input (a `"stream": true` request goes to
        `stream`), `NoAdmissibleOffering` when nothing passes the filters, `ProviderRejected`
        for a provider's 4xx, `CascadeExhausted` otherwise."""
        parsed = _parsed(request, stream=False)
        decision, trace_id = await self._decide_for_call(policy, parsed, policy_name, caller)
        outcome = await self.dispatcher.complete(self.clients.client(), decision, parsed)
        ok = outcome.ok and outcome.response is not None
        self._record(decision, trace_id, outcome, "ok" if ok else "failed", policy_name,
                     parsed.body.get("messages"), caller)
        if not ok or outcome.response is None:
            raise failed(decision, trace_id, outcome, self.config.hash)
        return Completion(outcome.response, decision, outcome, trace_id, self.config.hash)

    async def stream(self, policy: PolicyInput, request: Mapping[str, Any], *,
                     policy_name: str | None = None,
                     caller: Mapping[str, Any] | None = None) -> CompletionStream:
        """`complete` for a streamed answer (`"stream": true` is implied): fails over until the
        first chunk arrives, then returns the stream. Raises as `complete` does."""
        parsed = _parsed({**request, "stream": True} if isinstance(request, Mapping)
                         else request, stream=True)
        decision, trace_id = await self._decide_for_call(policy, parsed, policy_name, caller)
        outcome = Outcome()
        batches = self.dispatcher.stream(self.clients.client(), decision, parsed, outcome)
        stream = CompletionStream(batches, decision, outcome, trace_id, self.config.hash)
        messages = parsed.body.get("messages")

        def ended() -> None:  # recorded once the stream has ended (or was closed early)
            self._record(decision, trace_id, outcome, _stream_label(outcome), policy_name,
                         messages, caller)

        if not await stream.started(ended):
            self._record(decision, trace_id, outcome, "failed", policy_name, messages, caller)
            raise failed(decision, trace_id, outcome, self.config.hash)
        return stream

    def complete_sync(self, policy: PolicyInput, request: Mapping[str, Any], *,
                      policy_name: str | None = None) -> Completion:
        """`complete` for synchronous code, run on the router's own event-loop thread."""
        return self.loop.submit(self.complete(policy, request,
                                              policy_name=policy_name)).result()

    def stream_sync(self, policy: PolicyInput, request: Mapping[str, Any], *,
                    policy_name: str | None = None) -> SyncCompletionStream:
        """`stream` for synchronous code: iterate it for the chunks."""
        started = self.stream(policy, request, policy_name=policy_name)
        return SyncCompletionStream(self.loop.submit(started).result(), self.loop.submit)

    # -- closing ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the HTTP clients of the running loop."""
        await self.clients.aclose()

    def close(self) -> None:
        """Stop watching, close the event-loop thread (its clients, pending tasks and async
        generators first) and the derivation cache; write every queued record."""
        self.catalogs.stop()
        self.loop.close(self.clients.aclose())
        self.deciders.close()
        if self.records is not None:
            self.records.close()  # flushes every decision queued so far


def _stream_label(outcome: Outcome) -> str:
    """ok, failed, or cancelled: the caller stopped reading before the stream ended."""
    if outcome.attempts and outcome.attempts[-1].outcome == "cancelled":
        return "cancelled"
    return "ok" if outcome.ok else "failed"


def _parsed(request: Mapping[str, Any], stream: bool) -> Request:
    parsed = request if isinstance(request, Request) else parse_request(request)
    if (parsed.body.get("stream") is True) != stream:
        hint = "call `Router.stream` / `stream_sync` for a streamed answer" if not stream else \
            "call `Router.complete` / `complete_sync` for an answer in one piece"
        raise RequestError([Problem(code="request.stream_method", pointer="/stream",
                                    message="`stream` does not match the method called",
                                    hint=hint)])
    return parsed


