"""The OpenAI-compatible service, through the official `openai` SDK, against the real server
(`unhardcoded serve` as a subprocess on 127.0.0.1) and loopback fake providers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from router.cli.main import main
from router.policy.admit import admit
from tests.dispatch_support import ANTHROPIC_KEY, OPENAI_KEY, policy
from tests.fakes import FakeProvider, status, stream_drop
from tests.service_support import Served, fake_providers, service_env, serving

HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    with fake_providers() as both:
        yield both


@pytest.fixture(scope="module")
def served(providers: tuple[FakeProvider, FakeProvider],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    oa, an = providers
    with serving(tmp_path_factory.mktemp("service"), service_env(oa.base_url, an.base_url)) as s:
        yield s


@pytest.fixture()
def fresh(providers: tuple[FakeProvider, FakeProvider], tmp_path: Path) -> Iterator[Served]:
    """A service of its own: scripted failures open no circuit another test would meet."""
    oa, an = providers
    with serving(tmp_path, service_env(oa.base_url, an.base_url)) as s:
        yield s


def test_named_policy_through_the_sdk_with_headers_and_record(served: Served) -> None:
    raw = served.client().chat.completions.with_raw_response.create(
        model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
    done = raw.parse()
    assert done.choices[0].message.content == "Hello from the fake provider."
    assert done.model == "cheap-2026"  # the provider's name for the model that served
    h = raw.headers
    assert h["x-unhardcoded-served-by"] == "openai/cheap"
    assert h["x-unhardcoded-policy"] == "cheap"
    assert h["x-unhardcoded-policy-hash"] == admit(policy()).hash
    assert h["x-unhardcoded-hops"] == "1"
    assert float(h["x-unhardcoded-cost-usd"]) > 0
    stored = served.stored(h["x-unhardcoded-trace-id"])
    assert (stored.outcome, stored.served_by, stored.policy_name) == ("ok", "openai/cheap",
                                                                      "cheap")
    with served.http() as http:
        got = http.get(f"/v1/traces/{stored.trace_id}").json()
    assert got["record"]["selected"] == "openai/cheap"
    assert got["record"]["served_by"] == "openai/cheap"


def test_the_trace_id_finds_the_record_from_the_cli(
        served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    raw = served.client().chat.completions.with_raw_response.create(
        model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
    trace_id = raw.headers["x-unhardcoded-trace-id"]
    served.stored(trace_id)
    assert main(["trace", "show", trace_id, "--records", str(served.records), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["trace_id"] == trace_id
    assert shown["served_by"] == "openai/cheap"


def test_async_client_stream_with_usage(served: Served) -> None:
    async def run() -> tuple[str, Any, list[str]]:
        client = served.async_client()
        stream = await client.chat.completions.create(
            model="policy:cheap", messages=HELLO, stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True})
        text, usage, models = "", None, []
        async for chunk in stream:
            models.append(chunk.model)
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage is not None:
                usage = chunk.usage
        await client.close()
        return text, usage, models

    text, usage, models = asyncio.run(run())
    with served.http() as http, http.stream(
            "POST", "/v1/chat/completions",
            json={"model": "policy:cheap", "messages": HELLO, "stream": True}) as r:
        assert r.headers["x-unhardcoded-served-by"] == "openai/cheap"
        assert r.headers["x-unhardcoded-hops"] == "1"
        assert list(r.iter_lines())[-2:] == ["data: [DONE]", ""]
    assert text == "Hello from the fake provider."
    assert usage is not None and usage.completion_tokens > 0
    assert set(models) == {"cheap-2026"}


def test_inline_policy_and_labels_in_extra_body(served: Served) -> None:
    only_mid = policy(filters=[["==", "model", "mid"]])
    raw = served.client().chat.completions.with_raw_response.create(
        model="anything", messages=HELLO,  # type: ignore[arg-type]
        extra_body={"policy": only_mid, "labels": ["pii"]})
    assert raw.headers["x-unhardcoded-served-by"] == "openai/mid"
    assert raw.headers["x-unhardcoded-policy"] == "inline"
    stored = served.stored(raw.headers["x-unhardcoded-trace-id"])
    assert stored.body["request_features"]["labels"] == ["pii"]
    assert stored.policy_name is None and stored.policy_hash == admit(only_mid).hash


def test_policy_in_a_header_by_name_or_json(served: Served) -> None:
    client = served.client()
    by_name = client.chat.completions.with_raw_response.create(
        model="x", messages=HELLO,  # type: ignore[arg-type]
        extra_headers={"x-unhardcoded-policy": "cheap"})
    assert by_name.headers["x-unhardcoded-policy"] == "cheap"
    as_json = client.chat.completions.with_raw_response.create(
        model="x", messages=HELLO,  # type: ignore[arg-type]
        extra_headers={"x-unhardcoded-policy": json.dumps(
            policy(filters=[["==", "provider", "anthropic"]]))})
    assert as_json.headers["x-unhardcoded-served-by"] == "anthropic/claude"


def test_plain_model_name_is_a_one_model_policy(served: Served) -> None:
    raw = served.client().chat.completions.with_raw_response.create(
        model="mid", messages=HELLO)  # type: ignore[arg-type]
    assert raw.headers["x-unhardcoded-policy"] == "model:mid"
    assert raw.headers["x-unhardcoded-served-by"] == "openai/mid"
    assert raw.parse().model == "mid"
    with pytest.raises(openai.NotFoundError) as caught:
        served.client().chat.completions.create(model="midd-x", messages=HELLO)  # type: ignore[arg-type]
    err = caught.value.body
    assert isinstance(err, dict) and err["code"] == "model_not_found"
    assert err["message"] == ("the catalog has no model or offering `midd-x`; "
                              "did you mean `mid`?")


def test_unknown_policy_name_is_404_with_did_you_mean(served: Served) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        served.client().chat.completions.create(model="policy:chaep", messages=HELLO)  # type: ignore[arg-type]
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "policy_not_found" and "did you mean `cheap`?" in body["message"]


def test_failover_and_429_with_retry_after(fresh: Served,
                                           providers: tuple[FakeProvider, FakeProvider]) -> None:
    oa, _ = providers
    oa.script_for("cheap-2026", status(429, headers={"Retry-After": "0"}))
    oa.script_for("mid", status(500))
    raw = fresh.client().chat.completions.with_raw_response.create(
        model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
    assert raw.headers["x-unhardcoded-served-by"] == "anthropic/claude"
    assert raw.headers["x-unhardcoded-hops"] == "3"
    stored = fresh.stored(raw.headers["x-unhardcoded-trace-id"])
    outcomes = [(a["offering"], a["outcome"]) for a in stored.body["dispatch"]["attempts"]]
    assert outcomes == [("openai/cheap", "rate_limit"), ("openai/mid", "error"),
                        ("anthropic/claude", "ok")]


def test_mid_stream_drop_ends_with_an_error_event(
        fresh: Served, providers: tuple[FakeProvider, FakeProvider]) -> None:
    oa, _ = providers
    oa.script_for("cheap-2026", stream_drop(after_chunks=2))
    got: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        stream = fresh.client().chat.completions.create(
            model="policy:cheap", messages=HELLO, stream=True)  # type: ignore[arg-type]
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "after the stream had started" in str(caught.value.message)
    assert "".join(got)  # the chunks before the drop reached the client


def test_every_hop_failed_is_502_with_the_hops(
        fresh: Served, providers: tuple[FakeProvider, FakeProvider]) -> None:
    oa, an = providers
    oa.script_for("cheap-2026", status(500))
    oa.script_for("mid", status(500))
    an.script_for("claude-x-20260101", status(500))
    with pytest.raises(openai.InternalServerError) as caught:
        fresh.client().chat.completions.create(model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "upstream_failed"
    assert [h["offering"] for h in body["hops"]] == ["openai/cheap", "openai/mid",
                                                    "anthropic/claude"]
    assert OPENAI_KEY not in json.dumps(body) and ANTHROPIC_KEY not in json.dumps(body)


def test_a_provider_4xx_is_passed_through(
        fresh: Served, providers: tuple[FakeProvider, FakeProvider]) -> None:
    oa, _ = providers
    oa.script_for("cheap-2026", status(400, message="max_tokens is too large"))
    with pytest.raises(openai.BadRequestError) as caught:
        fresh.client().chat.completions.create(model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
    assert "max_tokens is too large" in caught.value.message
    body = caught.value.body
    assert isinstance(body, dict) and body["served_by"] == "openai/cheap"


def test_nothing_admissible_is_422_with_counts_and_the_nearest(served: Served) -> None:
    strict = policy(filters=[["<=", "input_price", 0.05], [">=", "context_window", 1000]])
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        served.client().chat.completions.create(
            model="x", messages=HELLO, extra_body={"policy": strict})  # type: ignore[arg-type]
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "no_admissible_offering"
    assert body["rejections_by_clause"]["/2/1"] == 3  # cheap, mid and claude are over 0.05
    assert body["nearest"]["offering"] == "openai/cheap"
    assert body["nearest"]["smallest_change"]
    assert body["trace_id"]


def test_a_bad_policy_is_400_with_every_problem(served: Served) -> None:
    bad = ["policy", ["ev_zero"], ["filter", [">=", "regions", 5], ["has", "tags", 3]],
           ["rank"], ["select", ["first"]], ["mutate"], ["fallback"]]
    with pytest.raises(openai.BadRequestError) as caught:
        served.client().chat.completions.create(
            model="x", messages=HELLO, extra_body={"policy": bad})  # type: ignore[arg-type]
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "policy_invalid"
    pointers = {p["pointer"] for p in body["problems"]}
    assert {"/2/1/1", "/2/2/2"} <= pointers, pointers


def test_bad_requests_get_clear_errors_and_the_server_keeps_serving(served: Served) -> None:
    with served.http() as http:
        r = http.post("/v1/chat/completions", content=b'{"model": "policy:cheap", ',
                      headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = http.post("/v1/chat/completions", content=b"{}", headers={"content-type":
                                                                      "text/plain"})
        assert r.status_code == 415
        r = http.post("/v1/chat/completions", content=b"x" * (9 * 1024 * 1024),
                      headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        r = http.post("/v1/chat/completions", json={"model": "policy:cheap", "messages": []})
        assert r.status_code == 400 and r.json()["error"]["param"] == "/messages"
        r = http.get("/v1/chat/completions")
        assert r.status_code == 405
        r = http.get("/v1/nothing")
        assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
        r = http.post("/v1/chat/completions", json=[1, 2])
        assert r.status_code == 400
        r = http.post("/v1/chat/completions", json={"model": "policy:cheap", "messages": HELLO})
        assert r.status_code == 200


def test_models_route_and_explain(served: Served) -> None:
    ids = [m.id for m in served.client().models.list()]
    assert ids[0] == "policy:cheap" and {"cheap", "mid", "claude"} <= set(ids)
    with served.http() as http:
        r = http.post("/v1/route", json={"model": "policy:cheap", "messages": HELLO})
        assert r.status_code == 200
        record = r.json()
        assert record["selected"] == "openai/cheap" and record["trace_id"]
        assert r.headers["x-unhardcoded-trace-id"] == record["trace_id"]
        assert "proof" not in record["rejected"]["mistral/nokey"][0]
        full = http.post("/v1/route", params={"proofs": "true"},
                         json={"model": "policy:cheap", "messages": HELLO}).json()
        assert full["rejected"]["mistral/nokey"][0]["proof"]["pointer"] == \
            "builtin:status_available"
        r = http.post("/v1/explain", json={"model": "policy:cheap", "messages": HELLO,
                                           "offering": "mistral/nokey"})
        assert r.status_code == 200
        why = r.json()["data"][0]
        assert why["verdict"] == "rejected"
        assert why["failed"][0]["pointer"] == "builtin:status_available"
        r = http.post("/v1/explain", json={"model": "policy:cheap", "offering": "nope"})
        assert r.status_code == 404


def test_traces_list_filters(served: Served) -> None:
    raw = served.client().chat.completions.with_raw_response.create(
        model="mid", messages=HELLO)  # type: ignore[arg-type]
    trace_id = raw.headers["x-unhardcoded-trace-id"]
    served.stored(trace_id)
    with served.http() as http:
        listed = http.get("/v1/traces", params={"policy": "model:mid", "limit": 5}).json()
        assert trace_id in [t["trace_id"] for t in listed["data"]]
        assert all(t["policy_name"] == "model:mid" for t in listed["data"])
        assert http.get("/v1/traces", params={"limit": 0}).status_code == 400
        assert http.get("/v1/traces", params={"bogus": 1}).status_code == 400
        assert http.get("/v1/traces/not-a-trace").status_code == 404


def test_metrics_are_prometheus_text(served: Served) -> None:
    served.client().chat.completions.create(model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
    from prometheus_client.parser import text_string_to_metric_families

    with served.http() as http:
        r = http.get("/metrics")
    assert r.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(r.text) for s in f.samples}
    ok_requests = samples[("unhardcoded_requests_total",
                           (("route", "/v1/chat/completions"), ("status", "200")))]
    assert ok_requests >= 1
    assert any(name == "unhardcoded_decisions_total" and dict(labels).get("policy") == "cheap"
               for name, labels in samples)
    assert any(name == "unhardcoded_hops_total" for name, _ in samples)


def test_health_and_readiness(served: Served) -> None:
    with served.http() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz").json()
    assert ready["status"] == "ready" and ready["policies"] == ["cheap"]


def test_a_slow_body_is_refused_408(tmp_path: Path,
                                    providers: tuple[FakeProvider, FakeProvider]) -> None:
    import socket

    oa, an = providers
    with serving(tmp_path, service_env(oa.base_url, an.base_url),
                 ["--body-timeout", "0.5"]) as s, socket.create_connection(
                     ("127.0.0.1", s.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                     b"content-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        sock.settimeout(10)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert httpx.get(s.url + "/healthz").status_code == 200


def test_a_streamed_answer_sends_each_batch_in_one_body_message() -> None:
    """`_pump` (the unit): chunks that arrived together leave in one ASGI body message, in
    order and SSE-framed; a chunk that arrived alone leaves alone; `[DONE]` ends the body.
    Its neighbours are stand-ins: a batch source and a `send` that keeps what it is given."""
    from router.dispatch.completion import CompletionStream
    from router.dispatch.dispatcher import Outcome
    from router.service.chat import _pump

    def chunk(text: str) -> dict[str, Any]:
        return {"id": "c", "object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}

    async def batches() -> Any:
        yield [chunk("a"), chunk("b"), chunk("c")]
        yield [chunk("d")]

    async def go() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        stream = CompletionStream(batches(), None, Outcome(), "t")  # type: ignore[arg-type]
        await _pump({"type": "http.response.start", "status": 200, "headers": []}, stream,
                    send, None)  # type: ignore[arg-type]
        return sent

    sent = asyncio.run(go())
    bodies = [m["body"] for m in sent[1:]]
    assert [b.count(b"data: ") for b in bodies] == [3, 1, 1]
    texts = [json.loads(line[6:])["choices"][0]["delta"]["content"]
             for b in bodies[:2] for line in b.decode().split("\n\n") if line]
    assert texts == ["a", "b", "c", "d"]
    assert bodies[-1] == b"data: [DONE]\n\n" and sent[-1]["more_body"] is False
