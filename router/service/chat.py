"""`POST /v1/chat/completions`: OpenAI's request in, OpenAI's response (or SSE stream) out, the
decision made by `Router.complete` / `Router.stream` — no second decision path.

Response headers: `x-unhardcoded-trace-id`, `x-unhardcoded-policy` (the policy's name, `inline`
or `model:NAME`), `x-unhardcoded-policy-hash`, `x-unhardcoded-served-by`, `x-unhardcoded-hops`
(offerings attempted) and, when not streamed, `x-unhardcoded-cost-usd`.

A client that disconnects mid-stream closes the provider's stream at once; the record says
`cancelled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from router.common import jsonio
from router.common.problems import PolicyError, RequestError
from router.dispatch.completion import CompletionStream, DispatchError
from router.dispatch.dispatcher import Outcome
from router.engine.worker import EngineError
from router.facade import Router
from router.records.store import RecordsError
from router.request.features import MAX_REQUEST_DEPTH
from router.service.errors import ServiceError, from_dispatch, refused
from router.service.keys import Caller
from router.service.policies import HEADER, Chosen, PolicyNotFound
from router.service.state import State
from router.service.wire import (
    DONE,
    SSE_HEADERS,
    Disconnected,
    Receive,
    Scope,
    Send,
    encode_headers,
    header,
    read_body,
    require_json,
    send_json,
    sse,
)

log = logging.getLogger("unhardcoded.service")


class ChatHandler:
    def __init__(self, service: State) -> None:
        self.service = service

    async def complete(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> int:
        router, body, chosen = await prepared(self.service, scope, receive, caller)
        request = for_router(body, caller)
        who = caller.to_json()
        if body.get("stream") is True:
            return await self._stream(router, chosen, request, who, receive, send)
        with failures(router), self.counted(chosen):
            done = await router.complete(chosen.policy, request,
                                         policy_name=chosen.record_name, caller=who)
        response = dict(done.response)
        response["model"] = served_model(response, done.outcome, router)
        cost = done.outcome.cost
        headers = {**decision_headers(chosen, done.trace_id, done.outcome),
                   "x-unhardcoded-cost-usd": f"{cost.usd:.10f}" if cost else "unknown"}
        try:
            await send_json(send, 200, response, headers)
        finally:  # counted once the answer is on its way
            self.service.metrics.dispatched(chosen.name, done.outcome,
                                            done.decision.derivation.catalog)
        return 200

    async def _stream(self, router: Router, chosen: Chosen, request: dict[str, Any],
                      who: dict[str, Any], receive: Receive, send: Send) -> int:
        with failures(router), self.counted(chosen):
            stream = await router.stream(chosen.policy, request,
                                         policy_name=chosen.record_name, caller=who)
        headers = decision_headers(chosen, stream.trace_id, stream.outcome)
        start = {"type": "http.response.start", "status": 200,
                 "headers": [*SSE_HEADERS, *encode_headers(headers)]}
        # The events are pumped by this task (no second task to start and wait on); a client
        # that leaves cancels it, which stops reading the provider at once.
        task = asyncio.current_task()
        assert task is not None
        gone = asyncio.ensure_future(_disconnected(receive))
        pumping = True
        left = False

        def client_left(done: asyncio.Future[None]) -> None:
            nonlocal left
            if not done.cancelled():
                done.exception()  # (a failed `receive` counts as the client gone, and is seen)
                if pumping:
                    left = True
                    task.cancel()

        gone.add_done_callback(client_left)
        try:
            await _pump(start, stream, send, router)
        except asyncio.CancelledError:
            if not left or task.uncancel() > 0:
                raise  # cancelled by the server (shutting down), not by the client leaving
        except OSError as exc:  # the client's connection failed while we wrote to it
            log.info("a streamed answer's client went away: %s", type(exc).__name__)
        finally:
            pumping = False
            gone.cancel()
            await stream.aclose()  # the provider's stream, at once; recorded as it ended
        self.service.metrics.dispatched(chosen.name, stream.outcome,
                                        stream.decision.derivation.catalog)
        return 200

    @contextlib.contextmanager
    def counted(self, chosen: Chosen) -> Iterator[None]:
        """A dispatch that failed is counted too (its hops, by provider)."""
        try:
            yield
        except DispatchError as exc:
            if exc.outcome is not None and exc.decision is not None:
                self.service.metrics.dispatched(chosen.name, exc.outcome,
                                                exc.decision.derivation.catalog)
            raise


async def _pump(start: dict[str, Any], stream: CompletionStream, send: Send,
                router: Router) -> None:
    """The answer's head, then its events: those that arrived together leave in one body
    message (and the head with the first ones in one write: `router.service.coalesce`)."""
    await send(start)
    ended_with_error = False
    while True:
        try:
            batch = await stream.next_batch()
        except StopAsyncIteration:
            break
        events = []
        for chunk in batch:
            if "error" in chunk and "choices" not in chunk:
                ended_with_error = True
            elif not chunk.get("model"):  # the provider named none: the catalog's name
                chunk = {**chunk, "model": served_model(chunk, stream.outcome, router)}
            events.append(sse(chunk))
        await send({"type": "http.response.body", "body": b"".join(events), "more_body": True})
    await send({"type": "http.response.body", "body": b"" if ended_with_error else DONE,
                "more_body": False})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def prepared(service: State, scope: Scope, receive: Receive, caller: Caller
                   ) -> tuple[Router, dict[str, Any], Chosen]:
    """What every body-taking route starts with: the router, the JSON body, its policy."""
    body = await read_json_body(service, scope, receive)
    router = service.router
    assert router is not None
    return router, body, choose(service, body, scope, caller)


async def read_json_body(service: State, scope: Scope, receive: Receive) -> dict[str, Any]:
    require_json(scope)
    s = service.settings
    try:
        raw = await read_body(scope, receive, s.max_body_bytes, s.body_timeout_s)
    except Disconnected:
        raise ServiceError(400, "client_disconnected", "the client left", None) from None
    try:
        body = jsonio.loads(raw, "the request body", max_depth=MAX_REQUEST_DEPTH + 8)
    except jsonio.JsonRefused as exc:
        raise ServiceError(400, "invalid_json", exc.message, None) from None
    if not isinstance(body, dict):
        raise ServiceError(400, "invalid_request", "the body must be a JSON object", None)
    return body


def choose(service: State, body: Mapping[str, Any], scope: Scope, caller: Caller) -> Chosen:
    router = service.router
    assert router is not None
    try:
        chosen = service.chooser.choose(body, header(scope, HEADER.encode()), router.catalog)
    except PolicyNotFound as exc:
        status = 400 if exc.code == "model_required" else 404
        raise ServiceError(status, exc.code, exc.message, exc.param) from None
    except PolicyError as exc:
        raise refused(400, "policy_invalid", exc.problems, "policy") from None
    if not caller.allows(chosen.name if chosen.source == "named" else None):
        raise ServiceError(403, "policy_not_allowed",
                           f"this key may not use {describe(chosen)}", "model")
    return chosen


def describe(chosen: Chosen) -> str:
    return {"named": f"the policy `{chosen.name}`", "inline": "an inline policy",
            "model": f"a plain model name (`{chosen.name[6:]}`)"}[chosen.source]


def for_router(body: Mapping[str, Any], caller: Caller) -> dict[str, Any]:
    """The body the router sees: without our `policy` field, with the key's labels added to
    the caller's own."""
    request = {k: v for k, v in body.items() if k != "policy"}
    if caller.labels:
        own = request.get("labels", [])
        if isinstance(own, list):
            request["labels"] = [*own, *(x for x in caller.labels if x not in own)]
    return request


def decision_headers(chosen: Chosen, trace_id: str, outcome: Outcome) -> dict[str, str]:
    hops = {a.offering for a in outcome.attempts if a.outcome != "skipped"}
    serving = outcome.served_by or outcome.streaming  # a stream's, once its first chunk came
    if serving:
        hops.add(serving)
    return {"x-unhardcoded-trace-id": trace_id,
            "x-unhardcoded-policy": chosen.name,
            "x-unhardcoded-policy-hash": chosen.policy.hash,
            "x-unhardcoded-served-by": serving or "",
            "x-unhardcoded-hops": str(len(hops))}


def served_model(response: Mapping[str, Any], outcome: Outcome, router: Router) -> str:
    """The model that actually served: as the provider named it, else the catalog's name."""
    named = response.get("model")
    if isinstance(named, str) and named:
        return named
    offering = router.catalog.get(outcome.served_by) if outcome.served_by else None
    return offering.model if offering is not None else ""


@contextlib.contextmanager
def failures(router: Router) -> Iterator[None]:
    """The library's errors as the service's (OpenAI-shaped) errors."""
    try:
        yield
    except RequestError as exc:
        raise refused(400, "invalid_request", exc.problems, "request") from None
    except PolicyError as exc:
        raise refused(400, "policy_invalid", exc.problems, "policy") from None
    except DispatchError as exc:
        raise from_dispatch(exc, router) from None
    except RecordsError as exc:
        raise ServiceError(503, "records_not_stored", str(exc), None) from None
    except EngineError as exc:
        raise ServiceError(503, "derivation_failed", str(exc), None) from None
