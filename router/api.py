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
import threading
import time
import uuid
from collections import ChainMap, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from router.admit import admit, admit_text
from router.completion import (
    Completion,
    CompletionStream,
    SyncCompletionStream,
    failed,
    no_admissible,
)
from router.decide import Decider, Decision
from router.derive import Derivation, DerivationCache
from router.dispatch import Dispatcher, DispatchSettings, Outcome
from router.explain import Explanation, explain_offering
from router.features import Request, RequestFeatures, parse_request
from router.health import BreakerSettings, HealthTracker
from router.live import LiveState, LiveValues, from_environment
from router.offerings import Catalog, Offering, default_catalog, load_catalog
from router.providers.base import Endpoint
from router.providers.registry import Unreachable, resolve
from router.record import to_record
from router.terms import Policy

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
    """Decides over one catalog snapshot, calls providers over the user's own keys.

    Derivations are cached per policy hash. Keys and `<PROVIDER>_BASE_URL` overrides are read
    from `environ` (a snapshot of `os.environ` by default). `clock`, `sleep`, `rng` and `timer`
    are injected so that tests (and replays) control time and jitter.
    """

    def __init__(self, catalog: Catalog | str | Path | None = None, *,
                 clock: Clock = utc_now, trace_ids: Callable[[], str] = new_trace_id,
                 environ: Mapping[str, str] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None,
                 timer: Callable[[], float] = time.perf_counter,
                 breaker: BreakerSettings | None = None,
                 dispatch: DispatchSettings | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        if catalog is None:
            catalog = default_catalog()
        elif not isinstance(catalog, Catalog):
            catalog = load_catalog(catalog)
        self.catalog = catalog
        self.clock = clock
        self.trace_ids = trace_ids
        self.cache = DerivationCache()
        self._deciders: OrderedDict[tuple[str, str, str], Decider] = OrderedDict()
        self.environ: dict[str, str] = dict(os.environ if environ is None else environ)
        self.health = HealthTracker(clock, breaker)
        self.dispatcher = Dispatcher(self.endpoint, self.health, clock, sleep=sleep, rng=rng,
                                     timer=timer, settings=dispatch)
        self.max_connections = max_connections
        self._unreachable: tuple[str, LiveState] | None = None
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def register(self, policy: PolicyInput) -> Policy:
        """Admit a policy and start deriving it in the background."""
        p = as_policy(policy)
        self.cache.prefetch(p, self.catalog)
        return p

    def derivation(self, policy: PolicyInput) -> Derivation:
        return self.cache.get(as_policy(policy), self.catalog)

    def decider(self, policy: PolicyInput) -> Decider:
        d = self.derivation(policy)
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
        return from_environment(self.catalog, environ)

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

    # -- live state -------------------------------------------------------------------------

    def endpoint(self, offering: Offering) -> Endpoint | Unreachable:
        """Where an offering is called and with which key (or why it cannot be)."""
        return resolve(offering.provider, self.environ, getattr(offering, "base_url", None))

    def live(self) -> LiveState:
        """The live state a dispatch decides on: keys and adapters (`no_key`, `unsupported`),
        open circuits, observed latency and error rate."""
        cached = self._unreachable
        if cached is None or cached[0] != self.catalog.version:
            cached = (self.catalog.version, from_environment(self.catalog, self.environ))
            self._unreachable = cached
        observed = self.health.snapshot(self.health.observed())
        values: Mapping[str, LiveValues] = ChainMap(dict(cached[1].values), observed)
        return LiveState(values, consulted=True)

    # -- dispatch ---------------------------------------------------------------------------

    async def _decider_async(self, policy: PolicyInput) -> Decider:
        p = as_policy(policy)
        if self.cache.peek(p, self.catalog) is None:
            await asyncio.wrap_future(self.cache.prefetch(p, self.catalog))
        return self.decider(p)

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            limits = httpx.Limits(max_connections=self.max_connections,
                                  max_keepalive_connections=self.max_connections)
            client = httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False)
            self._clients[loop] = client
        return client

    async def complete(self, policy: PolicyInput,
                       request: Mapping[str, Any]) -> Completion | CompletionStream:
        """Decide, call the winner, fail over along the cascade, account for every attempt.

        Returns a `Completion` (or, for `"stream": true`, a `CompletionStream`). Raises
        `RequestError`/`PolicyError` for bad input, `NoAdmissibleOffering` when nothing passes
        the filters, `ProviderRejected` for a provider's 4xx, `CascadeExhausted` otherwise."""
        parsed = request if isinstance(request, Request) else parse_request(dict(request))
        decider = await self._decider_async(policy)
        decision = decider.decide(parsed.features, self.live(), self.clock())
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
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
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
    yield first
    async for chunk in rest:
        yield chunk


def load_json_file(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
