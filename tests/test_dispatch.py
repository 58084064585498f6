"""Dispatch end to end: the router calls real loopback HTTP servers speaking the OpenAI and
Anthropic wire formats, scripted per test with faults; time and jitter are injected."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router.common.problems import RequestError
from router.dispatch.completion import (
    CascadeExhausted,
    Completion,
    NoAdmissibleOffering,
    ProviderRejected,
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
from tests.fakes import FakeProvider, delay, malformed, ok, reset, status


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def complete(router: Router, pol: list[Any], req: dict[str, Any]) -> Any:
    try:
        return await router.complete(pol, req)
    finally:
        await router.aclose()


def outcomes(record: dict[str, Any]) -> list[tuple[str, int, str, int | None]]:
    return [(a["offering"], a["retry"], a["outcome"], a["status"]) for a in record["attempts"]]


# -- success and accounting -------------------------------------------------------------------


def test_winner_is_called_with_its_api_model_and_key_and_priced(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    oa, _ = fakes
    oa.script_for("cheap-2026", ok("hi!", usage=(1000, 200), cached=400))
    done = run(complete(router, policy(), request(max_tokens=50)))
    assert isinstance(done, Completion)
    assert done.response["choices"][0]["message"]["content"] == "hi!"
    sent = oa.requests[0]
    assert sent.json["model"] == "cheap-2026" and sent.json["max_tokens"] == 50
    assert "labels" not in sent.json
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    rec = done.record()
    assert rec["served_by"] == "openai/cheap" and rec["outcome"] == "ok"
    assert outcomes(rec) == [("openai/cheap", 0, "ok", 200)]
    assert rec["usage"] == {"prompt_tokens": 1000, "completion_tokens": 200,
                            "total_tokens": 1200, "cached_tokens": 400}
    # 600 fresh × 0.1 + 400 cached × 0.05 + 200 × 0.4, per 1e6
    assert rec["cost_usd"] == pytest.approx((600 * 0.1 + 400 * 0.05 + 200 * 0.4) / 1e6)
    used = {(f["attribute"], f["value"]) for f in rec["cost"]["facts"]}
    assert used == {("input_price", 0.1), ("output_price", 0.4), ("cached_input_price", 0.05)}
    assert rec["selected"] == "openai/cheap" and rec["cascade"] == ["openai/mid",
                                                                  "anthropic/claude"]


def test_no_usage_is_unknown_not_zero(router: Router,
                                      fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", ok("x", usage=None))
    rec = run(complete(router, policy(), request())).record()
    assert rec["usage"] is None and rec["cost_usd"] is None
    assert rec["cost"]["note"] == "the provider reported no usage"


def test_offerings_without_key_or_adapter_are_rejected_and_never_called(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    rec = run(complete(router, policy(), request())).record()
    reasons = {oid: [e["reason"] for e in es] for oid, es in rec["rejected"].items()}
    assert "no key: set MISTRAL_API_KEY" in reasons["mistral/nokey"][0]
    assert "no AWS credentials" in reasons["bedrock/noadapter"][0]
    assert rec["live"]["values"]["mistral/nokey"]["status"] == "no_key"
    assert rec["live"]["values"]["bedrock/noadapter"]["status"] == "no_key"
    assert all(r.json["model"] != "nokey" for r in fakes[0].requests)


def test_nothing_admissible_fails_loudly_before_any_call(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    pol = policy(filters=[["in", "provider", ["mistral", "bedrock"]]])
    with pytest.raises(NoAdmissibleOffering) as info:
        run(complete(router, pol, request()))
    assert "no key: set MISTRAL_API_KEY" in str(info.value)
    assert info.value.record["attempts"] == []
    assert fakes[0].requests == [] and fakes[1].requests == []


def test_bad_request_body_is_refused_before_any_call(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    with pytest.raises(RequestError) as info:
        run(complete(router, policy(), {"messages": "nope"}))
    assert info.value.problems[0].pointer == "/messages"
    assert fakes[0].requests == []


# -- retries, Retry-After, failover -----------------------------------------------------------


def test_429_retry_after_seconds_is_honoured_then_retry_succeeds(
        router: Router, fakes: tuple[FakeProvider, FakeProvider], clock: Clock) -> None:
    fakes[0].script_for("cheap-2026", status(429, headers={"Retry-After": "2"}), ok("later"))
    done = run(complete(router, policy(fallback=[["retry", 2, 100]]), request()))
    rec = done.record()
    assert outcomes(rec) == [("openai/cheap", 0, "rate_limit", 429),
                             ("openai/cheap", 1, "ok", 200)]
    assert rec["attempts"][0]["retry_after_s"] == 2.0
    assert clock.waits == [2.0]  # jitter ceiling 0.1 s < Retry-After 2 s
    assert rec["attempts"][1]["waited_ms"] == 2000.0
    assert rec["attempts"][1]["start"] == "2026-11-26T12:00:02+00:00"


def test_retry_after_http_date(router: Router, fakes: tuple[FakeProvider, FakeProvider],
                               clock: Clock) -> None:
    fakes[0].script_for("cheap-2026",
                        status(429, headers={"Retry-After": "Thu, 26 Nov 2026 12:00:05 GMT"}),
                        ok())
    run(complete(router, policy(fallback=[["retry", 1, 0]]), request()))
    assert clock.waits == [5.0]


def test_retry_after_over_the_cap_moves_to_the_next_hop_without_waiting(
        router: Router, fakes: tuple[FakeProvider, FakeProvider], clock: Clock) -> None:
    fakes[0].script_for("cheap-2026", status(429, headers={"Retry-After": "3600"}))
    fakes[0].script_for("mid", ok("from mid"))
    rec = run(complete(router, policy(fallback=[["retry", 3, 100]]), request())).record()
    assert outcomes(rec) == [("openai/cheap", 0, "rate_limit", 429), ("openai/mid", 0, "ok", 200)]
    assert clock.waits == []


def test_exponential_backoff_with_full_jitter_is_bounded_and_seeded(
        fakes: tuple[FakeProvider, FakeProvider], clock: Clock) -> None:
    router = make_router(environ(fakes[0].base_url, fakes[1].base_url), clock,
                         breaker=BreakerSettings(failure_threshold=10))
    fakes[0].script_for("cheap-2026", status(500), status(500), status(500), ok())
    rec = run(complete(router, policy(fallback=[["retry", 3, 1000]]), request())).record()
    assert [a["outcome"] for a in rec["attempts"]] == ["error", "error", "error", "ok"]
    assert len(clock.waits) == 3
    for n, w in enumerate(clock.waits):
        assert 0.0 <= w <= 1.0 * 2 ** n
    import random
    rng = random.Random(7)
    assert clock.waits == [rng.uniform(0, 1.0 * 2 ** n) for n in range(3)]
    assert [a["waited_ms"] for a in rec["attempts"]] == [
        pytest.approx(w * 1000, abs=1e-3) for w in [0.0, *clock.waits]]
    router.close()


@pytest.mark.parametrize(("fault", "kind", "code"), [
    (status(500), "error", 500),
    (status(503), "rate_limit", 503),
    (status(529), "rate_limit", 529),
    (reset(), "error", None),
    (malformed("not_json"), "error", 200),
    (malformed("wrong_shape"), "error", 200),
    (delay(3.0), "timeout", None),
])
def test_each_fault_is_classified_and_fails_over_to_the_next_hop(
        router: Router, fakes: tuple[FakeProvider, FakeProvider], fault: Any, kind: str,
        code: int | None) -> None:
    fakes[0].script_for("cheap-2026", fault)
    fakes[0].script_for("mid", ok("mid answered"))
    pol = policy(fallback=[["timeout_ms", 300]])
    done = run(complete(router, pol, request()))
    rec = done.record()
    assert outcomes(rec) == [("openai/cheap", 0, kind, code), ("openai/mid", 0, "ok", 200)]
    assert done.response["choices"][0]["message"]["content"] == "mid answered"


def test_failover_to_anthropic_translates_both_ways(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    oa, an = fakes
    oa.script_for("cheap-2026", status(500))
    oa.script_for("mid", status(502))
    an.script_for("claude-x-20260101", ok("bonjour", usage=(30, 5), cached=10))
    done = run(complete(router, policy(), request(max_tokens=64, temperature=0.2)))
    rec = done.record()
    assert [a["outcome"] for a in rec["attempts"]] == ["error", "error", "ok"]
    assert rec["served_by"] == "anthropic/claude"
    sent = an.requests[0]
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert sent.json["model"] == "claude-x-20260101" and sent.json["max_tokens"] == 64
    assert sent.json["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]}]
    assert sent.json["temperature"] == 0.2
    assert done.response["object"] == "chat.completion"
    assert done.response["choices"][0]["message"]["content"] == "bonjour"
    # Anthropic excludes cache reads from input_tokens; OpenAI form includes them
    assert rec["usage"] == {"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45,
                            "cached_tokens": 10}


def test_bad_request_stops_at_once_with_the_providers_error(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", status(400, message="messages[0]: bad role"))
    with pytest.raises(ProviderRejected) as info:
        run(complete(router, policy(fallback=[["retry", 3, 0]]), request()))
    e = info.value
    assert e.status == 400
    assert e.provider_error["error"]["message"] == "messages[0]: bad role"
    assert outcomes(e.record) == [("openai/cheap", 0, "bad_request", 400)]
    assert len(fakes[0].requests) == 1


def test_a_failure_the_fallback_does_not_list_stops(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", status(500))
    with pytest.raises(CascadeExhausted) as info:
        run(complete(router, policy(fallback=[["on", "timeout"]]), request()))
    assert "does not list" in str(info.value)
    assert len(fakes[0].requests) == 1


def test_fallback_fail_stops_after_the_first_hop(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", status(500), status(500))
    with pytest.raises(CascadeExhausted) as info:
        run(complete(router, policy(fallback=[["retry", 1, 0], ["fail"]]), request()))
    assert outcomes(info.value.record) == [("openai/cheap", 0, "error", 500),
                                           ("openai/cheap", 1, "error", 500)]
    assert "fallback says `fail`" in str(info.value)


def test_exhausted_cascade_lists_every_hop(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    oa, an = fakes
    oa.script_for("cheap-2026", status(429), status(500))
    oa.script_for("mid", reset(), malformed())
    an.script_for("claude-x-20260101", status(503), delay(2.0))
    with pytest.raises(CascadeExhausted) as info:
        run(complete(router, policy(fallback=[["retry", 1, 0], ["timeout_ms", 300]]),
                     request()))
    rec = info.value.record
    assert outcomes(rec) == [
        ("openai/cheap", 0, "rate_limit", 429), ("openai/cheap", 1, "error", 500),
        ("openai/mid", 0, "error", None), ("openai/mid", 1, "error", 200),
        ("anthropic/claude", 0, "rate_limit", 503), ("anthropic/claude", 1, "timeout", None),
    ]
    assert rec["outcome"] == "failed" and rec["served_by"] is None
    assert rec["error"]["kind"] == "timeout"
    msg = str(info.value)
    assert msg.startswith("every hop failed (3 hops: the winner and 2 in the cascade)")
    assert len(msg.splitlines()) == 7
    assert "hop 2 anthropic/claude retry 1: timeout" in msg


@pytest.mark.parametrize("bad", [["not", "an", "object"], "text", None])
def test_a_request_that_is_not_an_object_is_refused_cleanly(router: Router, bad: Any) -> None:
    with pytest.raises(RequestError) as info:
        run(complete(router, policy(), bad))
    assert info.value.problems[0].code == "request.invalid"


@pytest.mark.parametrize("body", ["[" * 50_000 + "]" * 50_000,
                                  '{"choices": [{"message": ' * 5_000])
def test_hostile_bodies_are_malformed_errors_not_crashes(
        router: Router, fakes: tuple[FakeProvider, FakeProvider], body: str) -> None:
    fakes[0].script_for("cheap-2026", status(200, body=body))
    fakes[0].script_for("mid", ok("fine"))
    rec = run(complete(router, policy(), request())).record()
    assert outcomes(rec) == [("openai/cheap", 0, "error", 200), ("openai/mid", 0, "ok", 200)]


def test_a_deeply_nested_error_body_is_kept_as_text(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", status(400, body="[" * 10_000 + "]" * 10_000))
    with pytest.raises(ProviderRejected) as info:
        run(complete(router, policy(), request()))
    assert isinstance(info.value.provider_error, str)


def test_retry_after_must_be_ascii_digits() -> None:
    import datetime as dt

    from router.dispatch.failures import retry_after_seconds
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    assert retry_after_seconds({"retry-after": "\u00b2"}, now) is None
    assert retry_after_seconds({"retry-after": "7"}, now) == 7.0
    assert retry_after_seconds({"retry-after-ms": "1500"}, now) == 1.5
    assert retry_after_seconds({"retry-after-ms": "nan", "retry-after": "3"}, now) == 3.0


def test_an_unclassified_exception_is_an_error_attempt_not_a_crash(
        router: Router, fakes: tuple[FakeProvider, FakeProvider],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A neighbour (the OpenAI adapter) is replaced by one that raises what no classifier
    knows; dispatch records an `error` attempt and fails over to Anthropic."""
    from router.dispatch.providers import registry

    class Broken:
        wire = "openai"

        async def complete(self, *args: Any) -> dict[str, Any]:
            raise KeyError("choices")

    monkeypatch.setitem(registry.ADAPTERS, "openai", Broken())  # type: ignore[arg-type]
    fakes[1].script_for("claude-x-20260101", ok("from claude"))
    rec = run(complete(router, policy(), request())).record()
    assert [a["outcome"] for a in rec["attempts"]] == ["error", "error", "ok"]
    assert rec["attempts"][0]["detail"] == "openai: unexpected failure (KeyError)"
    assert "unclassified KeyError from openai" in caplog.text
