"""Streaming dispatch, circuit breaker, per-hop mutations, the sync API and key hygiene —
against real loopback servers."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from router.dispatch.completion import (
    CascadeExhausted,
    Completion,
    CompletionStream,
    SyncCompletionStream,
)
from router.facade import Router
from router.live.health import BreakerSettings
from tests.dispatch_support import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    Clock,
    environ,
    make_router,
    policy,
    request,
)
from tests.fakes import FakeProvider, delay, ok, raw, reset, status, stream_drop, tool_call


async def collect(router: Router, pol: list[Any], req: dict[str, Any]
                  ) -> tuple[list[dict[str, Any]], CompletionStream]:
    try:
        stream = await router.stream(pol, req)
        assert isinstance(stream, CompletionStream)
        chunks = [c async for c in stream]
        return chunks, stream
    finally:
        await router.aclose()


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c.get("choices"))


# -- streaming --------------------------------------------------------------------------------


def test_stream_openai_end_to_end_with_usage_accounted(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", ok("streamed words here", usage=(20, 6), chunks=3))
    chunks, stream = asyncio.run(collect(router, policy(), request(stream=True)))
    assert text_of(chunks) == "streamed words here"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)  # the caller did not ask for usage
    assert fakes[0].requests[0].json["stream_options"] == {"include_usage": True}
    rec = stream.record()
    assert rec["served_by"] == "openai/cheap" and rec["outcome"] == "ok"
    assert rec["usage"]["prompt_tokens"] == 20 and rec["cost_usd"] is not None


def test_stream_usage_chunk_passed_on_when_asked(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", ok("a b", usage=(5, 2)))
    chunks, _ = asyncio.run(collect(router, policy(),
                                    request(stream=True,
                                            stream_options={"include_usage": True})))
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2


def test_stream_fails_over_before_the_first_chunk(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    oa, an = fakes
    oa.script_for("cheap-2026", status(500))
    oa.script_for("mid", reset())
    an.script_for("claude-x-20260101",
                  ok("from claude", usage=(9, 3), tool_calls=[tool_call("lookup", {"q": 1})]))
    chunks, stream = asyncio.run(collect(router, policy(), request(stream=True)))
    rec = stream.record()
    assert [(a["offering"], a["outcome"]) for a in rec["attempts"]] == [
        ("openai/cheap", "error"), ("openai/mid", "error"), ("anthropic/claude", "ok")]
    assert text_of(chunks) == "from claude"
    calls = [tc for c in chunks if c.get("choices")
             for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["function"]["name"] == "lookup"
    args = "".join(tc["function"].get("arguments") or "" for tc in calls)
    assert json.loads(args) == {"q": 1}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert rec["usage"]["prompt_tokens"] == 9 and rec["usage"]["completion_tokens"] == 3


def test_stream_drop_after_first_chunk_ends_with_an_error_event_and_no_failover(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", stream_drop(after_chunks=2, text="one two three four"))
    chunks, stream = asyncio.run(collect(router, policy(), request(stream=True)))
    assert chunks[-1]["error"]["code"] == "error"
    assert "after the stream had started" in chunks[-1]["error"]["message"]
    assert text_of(chunks[:-1])  # the caller got the first chunks
    rec = stream.record()
    assert [(a["offering"], a["outcome"]) for a in rec["attempts"]] == [
        ("openai/cheap", "error")]
    assert rec["outcome"] == "failed" and rec["served_by"] == "openai/cheap"
    assert rec["attempts"][0]["detail"].startswith("after the first chunk")
    assert len(fakes[0].requests) == 1  # no failover once bytes reached the caller


def _sse(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + p + b"\n\n" for p in payloads)


def _delta(text: str, finish: str | None = None) -> bytes:
    return json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                       "model": "cheap-2026", "choices": [
                           {"index": 0, "delta": {"content": text},
                            "finish_reason": finish}]}).encode()


def test_events_that_arrive_together_come_as_one_batch_in_order(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    """The provider's events in one piece: `next_batch` hands them out together, in order;
    chunk and batch reads mix (what `__anext__` took is not handed out again)."""
    body = _sse(_delta("a"), _delta("b"), _delta("c"), _delta("", "stop"), b"[DONE]")
    fakes[0].script_for("cheap-2026", raw(200, body, framing="chunked",
                                          content_type="text/event-stream"))

    async def read() -> tuple[dict[str, Any], list[dict[str, Any]], CompletionStream]:
        try:
            stream = await router.stream(policy(), request(stream=True))
            first = await anext(stream)
            rest = await stream.next_batch()
            with pytest.raises(StopAsyncIteration):
                await stream.next_batch()
            return first, rest, stream
        finally:
            await router.aclose()

    first, rest, stream = asyncio.run(read())
    assert text_of([first]) == "a" and text_of(rest) == "bc"  # one piece: one batch
    assert rest[-1]["choices"][0]["finish_reason"] == "stop"
    assert stream.finished and stream.record()["outcome"] == "ok"


def test_a_bad_event_after_good_ones_in_the_same_piece_ends_the_stream_after_them(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    """Good chunks and a malformed event arrive together: the caller gets the good chunks,
    then the error event; no failover (bytes had reached the caller)."""
    body = _sse(_delta("one "), _delta("two"), b"{not json")
    fakes[0].script_for("cheap-2026", raw(200, body, framing="chunked",
                                          content_type="text/event-stream"))
    chunks, stream = asyncio.run(collect(router, policy(), request(stream=True)))
    assert text_of(chunks[:-1]) == "one two"
    assert chunks[-1]["error"]["code"] == "error"
    rec = stream.record()
    assert [(a["offering"], a["outcome"]) for a in rec["attempts"]] == [
        ("openai/cheap", "error")]
    assert "malformed response" in rec["attempts"][0]["detail"]
    assert rec["outcome"] == "failed" and len(fakes[0].requests) == 1


def test_a_bad_first_event_fails_over_even_with_good_events_behind_it(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    body = _sse(b"{not json", _delta("late"), _delta("", "stop"), b"[DONE]")
    fakes[0].script_for("cheap-2026", raw(200, body, framing="chunked",
                                          content_type="text/event-stream"))
    fakes[0].script_for("mid", ok("from mid", chunks=2))
    chunks, stream = asyncio.run(collect(router, policy(), request(stream=True)))
    assert text_of(chunks) == "from mid"
    attempts = stream.record()["attempts"]
    assert [(a["offering"], a["outcome"]) for a in attempts] == [
        ("openai/cheap", "error"), ("openai/mid", "ok")]
    assert "malformed response" in attempts[0]["detail"]


def test_batching_helpers_close_what_they_wrap_and_take_plain_iterators() -> None:
    """`one_by_one` and `unbatched` (an adapter's `stream_batches` / `stream` from the other):
    closing them early closes the generator they wrap at once (its `finally` runs: the
    provider's connection goes back); an async iterator without `aclose` is fine too."""
    from router.dispatch.providers.base import one_by_one, unbatched

    closed: list[str] = []

    async def gen(name: str, items: list[Any]) -> Any:
        try:
            for item in items:
                yield item
        finally:
            closed.append(name)

    class Plain:
        def __init__(self) -> None:
            self.left = [{"n": 1}, {"n": 2}]

        def __aiter__(self) -> Plain:
            return self

        async def __anext__(self) -> dict[str, Any]:
            if not self.left:
                raise StopAsyncIteration
            return self.left.pop(0)

    async def go() -> tuple[Any, Any, Any]:
        batches = one_by_one(gen("chunks", [{"n": 1}, {"n": 2}]))
        first = await anext(batches)
        await batches.aclose()  # type: ignore[attr-defined]
        chunks = unbatched(gen("batches", [[{"n": 1}, {"n": 2}], [{"n": 3}]]))
        one = await anext(chunks)
        await chunks.aclose()  # type: ignore[attr-defined]
        plain = [b async for b in one_by_one(Plain())]
        return first, one, plain

    first, one, plain = asyncio.run(go())
    assert first == [{"n": 1}] and one == {"n": 1}
    assert closed == ["chunks", "batches"]
    assert plain == [[{"n": 1}], [{"n": 2}]]


def test_stream_every_hop_failing_raises_with_the_hops(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    oa, an = fakes
    oa.script_for("cheap-2026", status(503))
    oa.script_for("mid", status(500))
    an.script_for("claude-x-20260101", status(529))
    with pytest.raises(CascadeExhausted) as info:
        asyncio.run(collect(router, policy(), request(stream=True)))
    assert [a["status"] for a in info.value.record["attempts"]] == [503, 500, 529]


# -- circuit breaker --------------------------------------------------------------------------


def test_circuit_opens_after_three_failures_shows_in_explain_and_recovers(
        fakes: tuple[FakeProvider, FakeProvider], clock: Clock) -> None:
    oa, _ = fakes
    router = make_router(environ(oa.base_url, fakes[1].base_url), clock,
                         breaker=BreakerSettings(failure_threshold=3, cooldown_s=60))
    pol = policy(cascade=1)
    for _ in range(3):
        oa.script_for("cheap-2026", status(500))
        done = router.complete_sync(pol, request())
        assert isinstance(done, Completion) and done.served_by == "openai/mid"
    live = router.live()
    assert live.of("openai/cheap").status == "circuit_open"
    why = router.explain(pol, "openai/cheap", request(), live)[0]
    reasons = [f.reason for f in why.failed]
    assert any("circuit open until 12:01:00 UTC after 3 failures" in r for r in reasons), reasons
    # while open, the offering is not admissible: never called, not even as a fallback
    before = len([r for r in oa.requests if r.json["model"] == "cheap-2026"])
    done = router.complete_sync(pol, request())
    assert isinstance(done, Completion)
    rec = done.record()
    assert rec["served_by"] == "openai/mid" and "openai/cheap" in rec["rejected"]
    assert len([r for r in oa.requests if r.json["model"] == "cheap-2026"]) == before
    # after the cool-down a probe goes out; success closes the circuit
    clock.advance(61)
    assert router.live().of("openai/cheap").status == "available"
    done = router.complete_sync(pol, request())
    assert isinstance(done, Completion) and done.served_by == "openai/cheap"
    values = router.live().of("openai/cheap")
    assert values.status == "available" and values.error_rate == pytest.approx(3 / 4)
    router.close()


def test_half_open_probe_failure_reopens(fakes: tuple[FakeProvider, FakeProvider],
                                         clock: Clock) -> None:
    oa, _ = fakes
    router = make_router(environ(oa.base_url, fakes[1].base_url), clock,
                         breaker=BreakerSettings(failure_threshold=2, cooldown_s=10))
    oa.script_for("cheap-2026", status(500), status(500), status(500))
    pol = policy(cascade=1)
    router.complete_sync(pol, request())
    router.complete_sync(pol, request())
    assert router.live().of("openai/cheap").status == "circuit_open"
    clock.advance(11)
    done = router.complete_sync(pol, request())  # the probe fails, mid answers
    assert isinstance(done, Completion)
    assert [a["outcome"] for a in done.record()["attempts"]] == ["error", "ok"]
    assert router.live().of("openai/cheap").status == "circuit_open"
    router.close()


def test_bad_requests_do_not_open_the_circuit(fakes: tuple[FakeProvider, FakeProvider],
                                               clock: Clock) -> None:
    oa, _ = fakes
    router = make_router(environ(oa.base_url, fakes[1].base_url), clock)
    from router.dispatch.completion import ProviderRejected
    for _ in range(4):
        oa.script_for("cheap-2026", status(422))
        with pytest.raises(ProviderRejected):
            router.complete_sync(policy(), request())
    assert router.live().of("openai/cheap").status == "available"
    router.close()


# -- mutations per hop ------------------------------------------------------------------------


def test_clamp_max_tokens_uses_each_hops_own_limit(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    oa, an = fakes
    oa.script_for("cheap-2026", status(500))
    oa.script_for("mid", status(500))
    pol = policy(mutate=[["clamp_max_tokens"], ["default", "temperature", 0.3]])
    done = router.complete_sync(pol, request(max_tokens=5000))
    assert isinstance(done, Completion)
    sent = [r.json for r in oa.requests] + [r.json for r in an.requests]
    assert [s["max_tokens"] for s in sent] == [1000, 2000, 5000]
    assert [s["temperature"] for s in sent] == [0.3, 0.3, 0.3]
    rec = done.record()
    assert [a["params"]["max_tokens"] for a in rec["attempts"]] == [1000, 2000, 5000]


def test_clamp_writes_the_field_the_request_used_and_defaults_do_not_override(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    pol = policy(mutate=[["clamp_max_tokens"], ["default", "temperature", 0.3]])
    done = router.complete_sync(pol, request(max_completion_tokens=5000, temperature=0.9))
    assert isinstance(done, Completion)
    sent = fakes[0].requests[0].json
    assert sent["max_completion_tokens"] == 1000 and "max_tokens" not in sent
    assert sent["temperature"] == 0.9
    assert done.record()["attempts"][0]["params"] == {"max_completion_tokens": 1000}


# -- sync API ---------------------------------------------------------------------------------


def test_complete_sync_streams(router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", ok("sync stream", chunks=2))
    stream = router.stream_sync(policy(), request(stream=True))
    assert isinstance(stream, SyncCompletionStream)
    chunks = list(stream)
    assert text_of(chunks) == "sync stream"
    assert stream.record()["outcome"] == "ok"


def test_a_sync_stream_closed_after_its_first_chunk_is_cancelled(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    """The sync iterator pulls a batch per trip to the loop and hands out its chunks one by
    one; closing it after the first closes the provider stream and records it cancelled."""
    fakes[0].script_for("cheap-2026", ok("a b c d", chunks=4, chunk_delay=0.02))
    stream = router.stream_sync(policy(), request(stream=True))
    first = next(stream)
    assert first["choices"][0]["delta"].get("role") == "assistant"
    stream.close()
    rec = stream.record()
    assert [(a["offering"], a["outcome"]) for a in rec["attempts"]] == [
        ("openai/cheap", "cancelled")]
    router.close()


def test_concurrent_calls_share_the_pool(router: Router,
                                         fakes: tuple[FakeProvider, FakeProvider]) -> None:
    """Two bursts of 50 calls on one loop: the second reuses the first's kept-alive
    connections (round robin over the 16 client shards may need at most one more per shard)."""
    opened: list[int] = []

    async def bursts() -> list[Any]:
        try:
            results = []
            for _ in range(2):
                before = fakes[0].connections_opened
                results += await asyncio.gather(*(router.complete(policy(), request())
                                                  for _ in range(50)))
                opened.append(fakes[0].connections_opened - before)
            return results
        finally:
            await router.aclose()

    results = asyncio.run(bursts())
    assert all(isinstance(r, Completion) and r.served_by == "openai/cheap" for r in results)
    assert len({r.trace_id for r in results}) == 100
    assert len(fakes[0].requests) == 100
    assert 0 < opened[0] <= 50
    assert opened[1] <= 16, opened


# -- keys never leak --------------------------------------------------------------------------


def test_keys_never_appear_in_records_logs_or_errors(
        fakes: tuple[FakeProvider, FakeProvider], clock: Clock,
        caplog: pytest.LogCaptureFixture) -> None:
    oa, an = fakes
    router = make_router(environ(oa.base_url, an.base_url), clock)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    # a provider that echoes the key back in its error body
    oa.script_for("cheap-2026", status(500, message=f"bad key {OPENAI_KEY}"))
    oa.script_for("mid", status(401, message=f"Incorrect API key provided: {OPENAI_KEY}"))
    from router.dispatch.completion import ProviderRejected
    with pytest.raises(ProviderRejected) as info:
        router.complete_sync(policy(), request())
    exc = info.value
    assert exc.status == 401
    texts += [str(exc), repr(exc), json.dumps(exc.record), json.dumps(exc.to_json())]
    an.script_for("claude-x-20260101", ok("fine"))
    oa.script_for("cheap-2026", status(500))
    oa.script_for("mid", status(500))
    done = router.complete_sync(policy(), request())
    assert isinstance(done, Completion)
    texts += [json.dumps(done.record(proofs=True)), repr(done), repr(router.live()),
              repr(router.endpoint(router.catalog.get("openai/cheap")))]  # type: ignore[arg-type]
    texts += [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    assert "openai/mid" in blob and "***" in blob  # the echoed key was replaced
    assert OPENAI_KEY not in blob and ANTHROPIC_KEY not in blob
    router.close()


def test_a_stream_the_caller_closes_early_is_recorded_as_cancelled(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", ok("a b c d e f", chunks=6, chunk_delay=0.01))

    async def first_only() -> CompletionStream:
        try:
            stream = await router.stream(policy(), request(stream=True))
            assert isinstance(stream, CompletionStream)
            async for _ in stream:
                break
            await stream.aclose()
            assert [a.outcome for a in stream.outcome.attempts] == ["cancelled"]  # at once
            return stream
        finally:
            await router.aclose()

    stream = asyncio.run(first_only())
    rec = stream.record()
    assert [(a["offering"], a["outcome"]) for a in rec["attempts"]] == [
        ("openai/cheap", "cancelled")]
    assert rec["served_by"] == "openai/cheap"


def test_a_cancelled_half_open_probe_gives_its_slot_back(
        fakes: tuple[FakeProvider, FakeProvider], clock: Clock) -> None:
    oa, _ = fakes
    router = make_router(environ(oa.base_url, fakes[1].base_url), clock,
                         breaker=BreakerSettings(failure_threshold=1, cooldown_s=5))
    oa.script_for("cheap-2026", status(500))
    router.complete_sync(policy(cascade=1), request())
    clock.advance(6)
    oa.script_for("cheap-2026", delay(5.0))

    async def cancelled_probe() -> None:
        try:
            task = asyncio.ensure_future(router.complete(policy(cascade=1), request()))
            await oa.wait_for_requests_async(2, timeout=5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await router.aclose()

    asyncio.run(cancelled_probe())
    assert router.health.admit_call("openai/cheap") is None  # the slot is free again
    router.close()


def test_proxies_from_the_environment_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stray HTTPS_PROXY is ignored unless the router is built with trust_env=True."""
    from router.dispatch.pool import ClientPool

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    default = ClientPool(4, 2)
    trusting = ClientPool(4, 2, trust_env=True)
    assert not default.clients[0]._mounts  # no proxy transport mounted
    assert trusting.clients[0]._mounts
    asyncio.run(default.aclose())
    asyncio.run(trusting.aclose())


def test_finished_streams_give_their_connection_back_to_the_pool(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    """After `[DONE]` (OpenAI) or `message_stop` (Anthropic) the rest of the body is read, so
    the connection is reused: 40 streams open at most one connection per pool shard, not 40."""
    from router.dispatch.pool import DEFAULT_SHARDS
    opened_before = [f.connections_opened for f in fakes]

    async def go() -> None:
        try:
            for provider in ("openai", "anthropic"):
                for _ in range(40):
                    stream = await router.stream(
                        policy(filters=[["==", "provider", provider]]), request(stream=True))
                    async for _ in stream:
                        pass
                    assert stream.outcome.served_by is not None
        finally:
            await router.aclose()
    asyncio.run(go())
    opened = [f.connections_opened - b for f, b in zip(fakes, opened_before, strict=True)]
    assert all(0 < n <= DEFAULT_SHARDS for n in opened), opened
