"""Dispatch: call the decision's winner, fail over along its cascade exactly as the policy's
`fallback` says, and account for every attempt.

Per hop: the request body with that hop's mutations, the provider's model name; up to `retry`
retries on a listed failure (exponential backoff with full jitter, `Retry-After` honoured up to
`retry_after_cap_s` — a longer one moves on to the next hop at once), each attempt bounded by
`timeout_ms`; then the next hop (`next`) or stop (`fail`). A failure not listed, or a
`bad_request`, stops at once. An offering whose circuit is open is skipped, never called.

Streaming: failover is allowed until the first chunk reaches the caller; a failure after that
ends the stream with an error event, and the attempt is recorded as failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx

from router.catalog.offerings import Offering
from router.decide.decider import Decision, HopCall
from router.dispatch.failures import UpstreamFailure, from_exception, scrubbed
from router.dispatch.providers.base import Batch, Endpoint, ProviderCall, close_iterator
from router.dispatch.providers.registry import Unreachable, adapter
from router.dispatch.usage import Cost, Usage, price, usage_of
from router.live.health import HealthTracker
from router.request.features import Request

log = logging.getLogger("unhardcoded.dispatch")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], dt.datetime]
Resolve = Callable[[Offering], Endpoint | Unreachable]


@dataclass(frozen=True)
class DispatchSettings:
    retry_after_cap_s: float = 30.0  # a longer Retry-After is not waited for: next hop
    max_backoff_s: float = 30.0  # cap of one exponential backoff wait


@dataclass(frozen=True)
class Attempt:
    """One call (or one skipped hop) in the order it happened."""

    offering: str
    hop: int
    retry: int
    start: dt.datetime
    latency_ms: float | None
    outcome: str  # ok | error | timeout | rate_limit | bad_request | skipped | cancelled
    status: int | None = None
    waited_ms: float = 0.0  # backoff slept before this attempt
    detail: str | None = None
    retry_after_s: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # mutated params actually sent

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "offering": self.offering, "hop": self.hop, "retry": self.retry,
            "start": self.start.isoformat(),
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "outcome": self.outcome, "status": self.status,
            "waited_ms": round(self.waited_ms, 3), "params": dict(self.params),
        }
        if self.detail:
            out["detail"] = self.detail
        if self.retry_after_s is not None:
            out["retry_after_s"] = self.retry_after_s
        return out


@dataclass
class Outcome:
    """What dispatch produced: a response (or stream result) or the failure that ended it."""

    attempts: list[Attempt] = field(default_factory=list)
    served_by: str | None = None
    response: dict[str, Any] | None = None
    usage: Usage | None = None
    cost: Cost | None = None
    failure: UpstreamFailure | None = None
    stopped_because: str | None = None  # why dispatch ended without success
    latency_ms: float | None = None
    streaming: str | None = None  # the offering whose stream reached the caller (not recorded)

    @property
    def ok(self) -> bool:
        return self.served_by is not None and self.failure is None

    def to_json(self) -> dict[str, Any]:
        return {
            "attempts": [a.to_json() for a in self.attempts],
            "served_by": self.served_by,
            "usage": self.usage.to_json() if self.usage else None,
            "cost_usd": self.cost.usd if self.cost else None,
            "cost": self.cost.to_json() if self.cost else None,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "outcome": "ok" if self.ok else "failed",
            "error": None if self.ok else self.error_json(),
        }

    def error_json(self) -> dict[str, Any]:
        f = self.failure
        return {"kind": f.kind if f else None, "message": self.stopped_because,
                "status": f.status if f else None,
                "provider_error": f.body if f else None}


def hop_body(request: Request, call: HopCall, offering: Offering) -> dict[str, Any]:
    """The body sent to one hop: the request with the hop's mutated parameters and the
    provider's model name. A max-tokens field the mutations write replaces the other one."""
    body = dict(request.provider_body)
    params = call.params
    written = [p for p in ("max_tokens", "max_completion_tokens") if p in params]
    if written:
        for p in ("max_tokens", "max_completion_tokens"):
            if p not in written:
                body.pop(p, None)
    body.update(params)
    body["model"] = offering.api_model or offering.model
    return body


class Dispatcher:
    def __init__(self, resolve: Resolve, health: HealthTracker, clock: Clock, *,
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None,
                 timer: Callable[[], float] = time.perf_counter,
                 settings: DispatchSettings | None = None) -> None:
        self.resolve = resolve
        self.health = health
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.timer = timer
        self.settings = settings or DispatchSettings()

    def backoff_s(self, retry: int, backoff_ms: int, retry_after_s: float | None) -> float | None:
        """The wait before retry number `retry + 1`; None when Retry-After exceeds the cap."""
        ceiling = min(self.settings.max_backoff_s, backoff_ms / 1000.0 * (2 ** min(retry, 30)))
        jitter = self.rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
        if retry_after_s is None:
            return jitter
        if retry_after_s > self.settings.retry_after_cap_s:
            return None
        return max(retry_after_s, jitter)

    def _calls(self, decision: Decision, request: Request
               ) -> Iterator[tuple[HopCall, Offering, dict[str, Any], dict[str, Any]]]:
        """Each hop's call, body and parameters, made when the dispatch gets to that hop."""
        catalog = decision.derivation.catalog
        for oid in decision.hops:
            call = decision.call(oid)
            o = catalog.get(oid)
            assert o is not None
            yield call, o, hop_body(request, call, o), dict(call.params)

    async def complete(self, client: httpx.AsyncClient, decision: Decision,
                       request: Request) -> Outcome:
        """Non-streaming dispatch."""
        outcome = Outcome()
        t0 = self.timer()
        async for _ in self._run(client, decision, request, outcome, stream=False):
            pass
        outcome.latency_ms = (self.timer() - t0) * 1000.0
        return outcome

    def stream(self, client: httpx.AsyncClient, decision: Decision, request: Request,
               outcome: Outcome) -> AsyncIterator[Batch]:
        """Streaming dispatch: yields the chunks in batches (those that arrived together, in
        one list); `outcome` is complete when the iterator ends."""
        return self._timed_stream(client, decision, request, outcome)

    async def _timed_stream(self, client: httpx.AsyncClient, decision: Decision,
                            request: Request, outcome: Outcome) -> AsyncIterator[Batch]:
        t0 = self.timer()
        try:
            async with aclosing(self._run(client, decision, request, outcome, True)) as batches:
                async for batch in batches:
                    yield batch
        finally:
            outcome.latency_ms = (self.timer() - t0) * 1000.0

    async def _run(self, client: httpx.AsyncClient, decision: Decision, request: Request,
                   outcome: Outcome, stream: bool) -> AsyncGenerator[Batch, None]:
        fb = decision.derivation.policy.fallback
        timeout_s = fb.timeout_ms / 1000.0
        for hop, (call, offering, body, params) in enumerate(self._calls(decision, request)):
            oid = call.offering_id
            target = self.resolve(offering)
            if isinstance(target, Unreachable):
                outcome.attempts.append(Attempt(oid, hop, 0, self.clock(), None, "skipped",
                                                detail=target.reason))
                continue
            pcall = ProviderCall(oid, str(body["model"]), body, target, timeout_s)
            retry = 0
            waited = 0.0
            while True:
                blocked = self.health.admit_call(oid)
                if blocked is not None:
                    outcome.attempts.append(Attempt(oid, hop, retry, self.clock(), None,
                                                    "skipped", detail=blocked))
                    break
                start = self.clock()
                t0 = self.timer()
                failure: UpstreamFailure | None = None
                if stream:
                    attempt = self._stream_attempt(client, pcall, offering, start, t0, hop,
                                                   retry, waited, params, outcome)
                    async with aclosing(attempt):
                        async for batch in attempt:
                            yield batch
                    if outcome.served_by is not None:
                        return
                    failure = outcome.failure
                else:
                    try:
                        async with asyncio.timeout(timeout_s):
                            response = await adapter(target.wire).complete(client, pcall, start)
                    except UpstreamFailure as exc:
                        failure = exc
                    except TimeoutError:
                        failure = UpstreamFailure("timeout", f"{target.provider}: no answer "
                                                  f"within {fb.timeout_ms} ms")
                    except Exception as exc:  # a provider's oddity must not crash the router
                        failure = unexpected(exc, target.provider)
                    except BaseException:  # cancelled: a half-open probe slot is given back
                        self.health.release_probe(oid)
                        raise
                    latency = (self.timer() - t0) * 1000.0
                    if failure is not None:
                        failure = scrubbed(failure, _key(target))
                    if failure is None:
                        self.health.record(oid, "ok", latency)
                        usage = usage_of(response)
                        outcome.attempts.append(Attempt(oid, hop, retry, start, latency, "ok",
                                                        200, waited, params=params))
                        outcome.served_by, outcome.response = oid, response
                        outcome.failure = outcome.stopped_because = None
                        outcome.usage, outcome.cost = usage, price(usage, offering)
                        return
                    self.health.record(oid, failure.kind, latency)
                    outcome.attempts.append(Attempt(oid, hop, retry, start, latency,
                                                    failure.kind, failure.status, waited,
                                                    failure.message, failure.retry_after_s,
                                                    params))
                assert failure is not None
                outcome.failure = failure
                if failure.kind == "bad_request":
                    outcome.stopped_because = (f"{oid} refused the request (HTTP "
                                               f"{failure.status}); not retried")
                    return
                if failure.kind not in fb.on:
                    outcome.stopped_because = (f"{oid} failed with `{failure.kind}`, which the "
                                               f"policy's fallback does not list")
                    return
                if retry >= fb.retries:
                    break
                wait = self.backoff_s(retry, fb.backoff_ms, failure.retry_after_s)
                if wait is None:
                    break
                await self.sleep(wait)
                waited = wait * 1000.0
                retry += 1
            if fb.then == "fail":
                outcome.stopped_because = f"{oid} failed and the policy's fallback says `fail`"
                return
        n = len(decision.hops)
        outcome.stopped_because = (f"every hop failed ({n} hop{'s' if n != 1 else ''}: the "
                                   f"winner and {n - 1} in the cascade)"
                                   if outcome.attempts else "no hop to call")

    async def _stream_attempt(self, client: httpx.AsyncClient, pcall: ProviderCall,
                              offering: Offering, start: dt.datetime, t0: float, hop: int,
                              retry: int, waited: float, params: dict[str, Any],
                              outcome: Outcome) -> AsyncGenerator[Batch, None]:
        """One streaming attempt, in batches. Before the first chunk a failure is recorded and
        this returns (the caller fails over); after it, the stream ends with an error event."""
        oid = pcall.offering_id
        timeout_s = pcall.timeout_s
        source = adapter(pcall.endpoint.wire).stream_batches(client, pcall, start)
        want_usage = _wants_usage(pcall.body)
        failure: UpstreamFailure | None = None
        first: Batch | None = None
        accounted = len(outcome.attempts)
        try:
            try:
                async with asyncio.timeout(timeout_s):
                    first = await anext(source)
            except UpstreamFailure as exc:
                failure = exc
            except TimeoutError:
                failure = UpstreamFailure("timeout", f"{pcall.endpoint.provider}: no first "
                                          f"chunk within {int(timeout_s * 1000)} ms")
            except StopAsyncIteration:
                failure = UpstreamFailure("error", f"{pcall.endpoint.provider}: empty stream")
            except Exception as exc:  # a provider's oddity must not crash the router
                failure = unexpected(exc, pcall.endpoint.provider)
            if failure is not None or first is None:
                failure = scrubbed(failure or UpstreamFailure("error", "empty stream"),
                                   _key(pcall.endpoint))
                latency = (self.timer() - t0) * 1000.0
                self.health.record(oid, failure.kind, latency)
                outcome.attempts.append(Attempt(oid, hop, retry, start, latency, failure.kind,
                                                failure.status, waited, failure.message,
                                                failure.retry_after_s, params))
                outcome.failure = failure
                return
            outcome.streaming = oid
            usage: Usage | None = None
            batch: Batch | None = first
            while batch is not None:
                out: Batch = []
                for chunk in batch:
                    usage = usage_of(chunk) or usage
                    if want_usage or not _usage_only(chunk):
                        if not want_usage:
                            chunk.pop("usage", None)
                        out.append(chunk)
                if out:
                    yield out
                try:
                    batch = await anext(source)
                except StopAsyncIteration:
                    batch = None
                except UpstreamFailure as exc:
                    failure = exc
                    batch = None
                except Exception as exc:  # a provider's oddity must not crash the router
                    failure = unexpected(exc, pcall.endpoint.provider)
                    batch = None
            latency = (self.timer() - t0) * 1000.0
            if failure is not None:
                failure = scrubbed(failure, _key(pcall.endpoint))
            if failure is None:
                self.health.record(oid, "ok", latency)
                outcome.attempts.append(Attempt(oid, hop, retry, start, latency, "ok", 200,
                                                waited, params=params))
                outcome.failure = None
            else:
                self.health.record(oid, failure.kind, latency)
                outcome.attempts.append(Attempt(oid, hop, retry, start, latency, failure.kind,
                                                failure.status, waited,
                                                "after the first chunk: " + failure.message,
                                                failure.retry_after_s, params))
                outcome.failure = failure
                outcome.stopped_because = (f"{oid} failed after the stream had started; "
                                           f"the stream ended with an error event")
                yield [{"error": {"message": outcome.stopped_because, "type": "upstream_error",
                                  "code": failure.kind}}]
            outcome.served_by = oid
            outcome.usage, outcome.cost = usage, price(usage, offering)
        finally:
            if len(outcome.attempts) == accounted:  # closed or cancelled before an outcome
                self.health.release_probe(oid)
                if first is not None:  # the caller stopped reading a stream it had begun
                    outcome.attempts.append(Attempt(
                        oid, hop, retry, start, (self.timer() - t0) * 1000.0, "cancelled",
                        200, waited, "the caller closed the stream", params=params))
                    outcome.served_by = oid
            await close_iterator(source)


def unexpected(exc: Exception, provider: str) -> UpstreamFailure:
    """An exception no adapter classified (a bug, or a provider oddity nobody foresaw): an
    `error` attempt, logged by type only (its message could quote the provider's body)."""
    log.warning("unclassified %s from %s, counted as an error", type(exc).__name__, provider)
    return from_exception(exc, provider)


def _key(endpoint: Endpoint) -> str | None:
    return endpoint.api_key.reveal() if endpoint.api_key is not None else None


def _wants_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, Mapping) and options.get("include_usage") is True


def _usage_only(chunk: Mapping[str, Any]) -> bool:
    return chunk.get("choices") == [] and chunk.get("usage") is not None

