"""The library surface: a `Router` over one catalog, and one-shot helpers.

    router = Router()                                  # embedded catalog, keys from os.environ
    result = router.route(policy, request)             # decision + record (dry run)
    why = router.explain(policy, "openai/gpt-4o", request)
    done = await router.complete(policy, request)      # decide, call, fail over, account
    done = router.complete_sync(policy, request)       # the same from synchronous code
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import signal
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from router.catalog.offerings import Catalog, Offering
from router.catalog.refresh import (
    CatalogSource,
    ReloadReport,
    Watcher,
    log_reload,
    refused_report,
    source_of,
)
from router.common.problems import RefusedError
from router.decide.decider import Decider, Decision
from router.dispatch.completion import (
    Completion,
    CompletionStream,
    SyncCompletionStream,
    failed,
    no_admissible,
)
from router.dispatch.discovery import Discovery, discover
from router.dispatch.dispatcher import Dispatcher, DispatchSettings, Outcome
from router.dispatch.pool import DEFAULT_SHARDS, ClientPool
from router.dispatch.providers.base import Endpoint
from router.dispatch.providers.registry import Unreachable, resolve
from router.dispatch.reachability import from_environment
from router.engine.cache import DerivationCache
from router.engine.derive import Derivation
from router.explain.explanation import Explanation, explain_offering
from router.explain.record import to_record
from router.live.health import BreakerSettings, HealthTracker
from router.live.state import Layered, LiveState, LiveValues, disabled_values, with_disabled
from router.policy.admit import admit, admit_text
from router.policy.terms import Policy
from router.request.features import Request, RequestFeatures, parse_request

Clock = Callable[[], dt.datetime]
PolicyInput = Policy | str | bytes | list[Any]
T = TypeVar("T")
MAX_CONNECTIONS = 1000


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


_ADMITTED: OrderedDict[tuple[str, str | bytes], Policy] = OrderedDict()
_ADMITTED_MAX = 256
_ADMITTED_LOCK = threading.Lock()


def as_policy(policy: PolicyInput) -> Policy:
    """Admit a policy (a `Policy` passes through). Admitted inline policies are memoised by
    their exact text, so a service that sends the same policy with every request admits it
    once; a refused policy is never memoised."""
    if isinstance(policy, Policy):
        return policy
    key = ("text", policy) if isinstance(policy, str | bytes) else _text_key(policy)
    with _ADMITTED_LOCK:
        found = _ADMITTED.get(key) if key is not None else None
        if found is not None and key is not None:
            _ADMITTED.move_to_end(key)
            return found
    admitted = admit_text(policy) if isinstance(policy, str | bytes) else admit(policy)
    if key is not None:
        with _ADMITTED_LOCK:
            _ADMITTED[key] = admitted
            while len(_ADMITTED) > _ADMITTED_MAX:
                _ADMITTED.popitem(last=False)
    return admitted


def _text_key(term: object) -> tuple[str, str] | None:
    """An exact JSON text of a parsed policy, or None when it is not plain JSON data."""
    try:
        return ("term", json.dumps(term, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return None


def as_features(request: Mapping[str, Any] | RequestFeatures) -> RequestFeatures:
    if isinstance(request, RequestFeatures):
        return request
    return parse_request(dict(request)).features


class Router:
    """Decides over one catalog snapshot, calls providers over the user's own keys.

    Derivations are cached per policy hash. Keys and `<PROVIDER>_BASE_URL` overrides are read
    from `environ` (a snapshot of `os.environ` by default). `clock`, `sleep`, `rng` and `timer`
    are injected so that tests (and replays) control time and jitter.
    """

    def __init__(self, catalog: Catalog | str | Path | None = None, *,
                 overlays: Sequence[str | Path] = (),
                 clock: Clock = utc_now, trace_ids: Callable[[], str] = new_trace_id,
                 environ: Mapping[str, str] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None,
                 timer: Callable[[], float] = time.perf_counter,
                 breaker: BreakerSettings | None = None,
                 dispatch: DispatchSettings | None = None,
                 max_connections: int = MAX_CONNECTIONS,
                 pool_shards: int = DEFAULT_SHARDS, trust_env: bool = False) -> None:
        self.source: CatalogSource | None = None
        if isinstance(catalog, Catalog):
            if overlays:
                from router.catalog.overlays import apply_overlays, load_overlays
                catalog = apply_overlays(catalog, load_overlays(overlays))
        else:
            self.source = source_of(catalog, overlays)
            catalog = self.source.load()
        self.catalog = catalog  # swapped whole by `reload`; read once per decision
        self.clock = clock
        self.trace_ids = trace_ids
        self.cache = DerivationCache(processes=True)
        self._deciders: OrderedDict[tuple[str, str, str], Decider] = OrderedDict()
        self._registered: dict[str, Policy] = {}
        self.environ: dict[str, str] = dict(os.environ if environ is None else environ)
        self.health = HealthTracker(clock, breaker)
        self.dispatcher = Dispatcher(self.endpoint, self.health, clock, sleep=sleep, rng=rng,
                                     timer=timer, settings=dispatch)
        self.max_connections = max_connections
        self.pool_shards = pool_shards
        self.trust_env = trust_env  # True: honour HTTP(S)_PROXY / NO_PROXY from the process env
        self.discovered: Discovery | None = None
        self._unreachable: tuple[str, dict[str, LiveValues]] | None = None
        self._clients: dict[asyncio.AbstractEventLoop, ClientPool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._watcher: Watcher | None = None

    def register(self, policy: PolicyInput) -> Policy:
        """Admit a policy and start deriving it in the background; a catalog reload derives
        every registered policy before the new version serves."""
        p = as_policy(policy)
        with self._lock:
            self._registered[p.hash] = p
        self.cache.prefetch(p, self.catalog)
        return p

    def derivation(self, policy: PolicyInput, catalog: Catalog | None = None) -> Derivation:
        return self.cache.get(as_policy(policy), catalog or self.catalog)

    def decider(self, policy: PolicyInput, catalog: Catalog | None = None) -> Decider:
        d = self.derivation(policy, catalog)
        with self._lock:
            decider = self._deciders.get(d.key)
            if decider is None:
                decider = self._deciders[d.key] = Decider(d)
                while len(self._deciders) > self.cache.capacity:
                    self._deciders.popitem(last=False)
            else:
                self._deciders.move_to_end(d.key)
            return decider

    def live_from_environment(self, environ: Mapping[str, str] | None = None) -> LiveState:
        return with_disabled(from_environment(self.catalog, environ), self.catalog)

    def route(self, policy: PolicyInput, request: Mapping[str, Any] | RequestFeatures,
              live: LiveState | None = None) -> RouteResult:
        """A dry-run decision (no provider is called). Offerings disabled by an overlay are
        `disabled` whether or not live state is given."""
        catalog = self.catalog
        features = as_features(request)
        state = with_disabled(live or LiveState.not_consulted(), catalog)
        decision = self.decider(policy, catalog).decide(features, state, self.clock())
        return RouteResult(decision, self.trace_ids())

    def explain(self, policy: PolicyInput, offering: str,
                request: Mapping[str, Any] | RequestFeatures | None = None,
                live: LiveState | None = None) -> list[Explanation]:
        """Why each offering matching `offering` (an id, or a model name) was or was not chosen."""
        req = request if request is not None else {"messages": [{"role": "user", "content": ""}]}
        result = self.route(policy, req, live)
        return explain_offering(result.decision, offering)

    # -- live state -------------------------------------------------------------------------

    def endpoint(self, offering: Offering) -> Endpoint | Unreachable:
        """Where an offering is called and with which key (or why it cannot be)."""
        return resolve(offering.provider, self.environ, offering.base_url)

    def live(self, catalog: Catalog | None = None) -> LiveState:
        """The live state a dispatch decides on, first match wins: `disabled` by an overlay,
        `no_key` / `unsupported` (keys, adapters), `not_entitled` (discovery), `circuit_open`;
        then observed latency and error rate."""
        catalog = catalog or self.catalog
        cached = self._unreachable
        if cached is None or cached[0] != catalog.version:
            static = {**from_environment(catalog, self.environ).values,
                      **disabled_values(catalog)}
            cached = self._unreachable = (catalog.version, static)
        observed = self.health.snapshot(self.health.observed())
        entitled = self.discovered.values if self.discovered is not None else {}
        return LiveState(Layered(cached[1], entitled, observed), consulted=True)

    # -- catalog refresh --------------------------------------------------------------------

    def reload(self) -> ReloadReport:
        """Re-read the catalog and overlay files; derive every registered policy for the new
        version (on the derivation worker), then swap it in. A refused file changes nothing:
        the report lists its problems."""
        if self.source is None:
            raise ValueError("this router was given a Catalog object: there are no files to "
                             "reload (pass a path, or None for the embedded catalog)")
        with self._reload_lock:
            started = time.perf_counter()
            current = self.catalog
            try:
                new = self.source.load()
            except RefusedError as exc:
                return refused_report(current, exc)
            if new.version == current.version:
                return ReloadReport(False, current.version, current.version)
            with self._lock:
                policies = list(self._registered.values())
            futures = [self.cache.prefetch(p, new) for p in policies]
            for f in futures:
                f.result()
            self.catalog = new
            return ReloadReport(True, current.version, new.version, len(policies),
                                time.perf_counter() - started, swapped_at=time.monotonic())

    def reload_in_background(self) -> Future[ReloadReport]:
        future: Future[ReloadReport] = Future()

        def run() -> None:
            try:
                future.set_result(self.reload())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

        threading.Thread(target=run, name="catalog-reload", daemon=True).start()
        return future

    def watch(self, interval_s: float = 2.0) -> Watcher:
        """Reload whenever the catalog or an overlay file changes (polled every `interval_s`)."""
        if self.source is None:
            raise ValueError("this router was given a Catalog object: there are no files to watch")
        if self._watcher is not None:
            self._watcher.stop()
        self._watcher = Watcher(self.source, self.reload, interval_s).start()
        return self._watcher

    def reload_on_sighup(self) -> None:
        """In a process that owns SIGHUP (call from the main thread): reload on SIGHUP."""
        def on_hup(_sig: int, _frame: object) -> None:
            self.reload_in_background().add_done_callback(log_reload)

        signal.signal(signal.SIGHUP, on_hup)

    # -- discovery --------------------------------------------------------------------------

    async def discover(self, providers: Iterable[str] | None = None,
                       timeout_s: float = 10.0) -> Discovery:
        """Ask each provider with a key which models it may use; the rest become
        `not_entitled` in `live()` (until the next discovery)."""
        result = await discover(self.catalog, self.endpoint, self._client(), self.clock(),
                                timeout_s, providers)
        if self.discovered is not None:
            # Marks from an earlier discovery stay for every endpoint not listed successfully
            # this time (not asked, or its listing failed): a failure hides nothing new and
            # un-hides nothing either.
            listed = {(e.provider, e.base_url) for e in result.endpoints if e.error is None}
            kept = {}
            for oid, v in self.discovered.values.items():
                o = self.catalog.get(oid)
                ep = self.endpoint(o) if o is not None else None
                if isinstance(ep, Endpoint) and (ep.provider, ep.base_url) not in listed:
                    kept[oid] = v
            result = Discovery(result.at, {**kept, **result.values}, result.endpoints)
        self.discovered = result
        return result

    def discover_sync(self, providers: Iterable[str] | None = None,
                      timeout_s: float = 10.0) -> Discovery:
        return self._submit(self.discover(providers, timeout_s)).result()

    # -- dispatch ---------------------------------------------------------------------------

    async def _decider_async(self, policy: PolicyInput, catalog: Catalog) -> Decider:
        p = as_policy(policy)
        if self.cache.peek(p, catalog) is None:
            await asyncio.wrap_future(self.cache.prefetch(p, catalog))
        return self.decider(p, catalog)

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        pool = self._clients.get(loop)
        if pool is None or pool.is_closed:
            for old in [x for x in self._clients if x.is_closed()]:
                del self._clients[old]  # loops already gone (e.g. earlier `asyncio.run`s)
            pool = self._clients[loop] = ClientPool(self.max_connections, self.pool_shards,
                                                    self.trust_env)
        return pool.client()

    async def complete(self, policy: PolicyInput,
                       request: Mapping[str, Any]) -> Completion | CompletionStream:
        """Decide, call the winner, fail over along the cascade, account for every attempt.

        Returns a `Completion` (or, for `"stream": true`, a `CompletionStream`). Raises
        `RequestError`/`PolicyError` for bad input, `NoAdmissibleOffering` when nothing passes
        the filters, `ProviderRejected` for a provider's 4xx, `CascadeExhausted` otherwise."""
        parsed = request if isinstance(request, Request) else parse_request(
            dict(request) if isinstance(request, Mapping) else request)
        catalog = self.catalog
        decider = await self._decider_async(policy, catalog)
        decision = decider.decide(parsed.features, self.live(catalog), self.clock())
        trace_id = self.trace_ids()
        if decision.selected is None:
            raise no_admissible(decision, trace_id)
        client = self._client()
        if parsed.body.get("stream") is True:
            outcome = Outcome()
            chunks = self.dispatcher.stream(client, decision, parsed, outcome)
            stream = CompletionStream(chunks, decision, outcome, trace_id)
            first = await _first(stream)
            if first is None:
                raise failed(decision, trace_id, outcome)
            return CompletionStream(_prepend(first, stream), decision, outcome, trace_id)
        outcome = await self.dispatcher.complete(client, decision, parsed)
        if not outcome.ok or outcome.response is None:
            raise failed(decision, trace_id, outcome)
        return Completion(outcome.response, decision, outcome, trace_id)

    def complete_sync(self, policy: PolicyInput, request: Mapping[str, Any]
                      ) -> Completion | SyncCompletionStream:
        """`complete` for synchronous code, run on the router's own event-loop thread."""
        result = self._submit(self.complete(policy, request)).result()
        if isinstance(result, CompletionStream):
            return SyncCompletionStream(result, self._submit)
        return result

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="router-loop",
                                          daemon=True)
                thread.start()
                self._loop, self._loop_thread = loop, thread
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop)

    async def aclose(self) -> None:
        """Close the HTTP client of the running loop."""
        pool = self._clients.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        if self._loop is not None:
            loop = self._loop
            self._submit(self.aclose()).result()
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=5)
            loop.close()
            self._loop = None
        self.cache.close()


async def _first(stream: CompletionStream) -> dict[str, Any] | None:
    """The first chunk, or None when every hop failed before a chunk was produced."""
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None


async def _prepend(first: dict[str, Any], rest: CompletionStream
                   ) -> AsyncIterator[dict[str, Any]]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:  # a caller that stops early closes the provider stream now, not at GC
        await rest.aclose()
