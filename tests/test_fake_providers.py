"""The fake provider server itself, seen from real clients: httpx (sync and async) and the
official openai SDK, over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes import (
    FakeProvider,
    Ok,
    Status,
    delay,
    malformed,
    ok,
    ok_stream,
    reset,
    status,
    stream_drop,
    stream_error,
    tool_call,
)

MSGS: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hi"}]
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
CONNECTION_FAILURES = (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError,
                       httpx.WriteError)


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def client(fp: FakeProvider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fp.base_url, trust_env=False, timeout=5.0) as c:
        yield c


@pytest.fixture
def sdk(fp: FakeProvider) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=fp.base_url + "/v1", api_key="sk-test", max_retries=0)
    yield c
    c.close()


def chat(client: httpx.Client, model: str = "gpt-fake", **body: Any) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": model, "messages": MSGS, **body})


def messages(client: httpx.Client, model: str = "claude-fake", **body: Any) -> httpx.Response:
    return client.post("/v1/messages", headers=ANTHROPIC_HEADERS,
                       json={"model": model, "max_tokens": 64, "messages": MSGS, **body})


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of an SSE body."""
    out: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                data.append(line[len("data: "):])
        out.append((event, "\n".join(data)))
    return out


def fake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "FakeProvider" and t.is_alive()]


# ---- lifecycle --------------------------------------------------------------------------------


def test_lifecycle_base_url_and_clean_close() -> None:
    before = len(fake_threads())
    fp = FakeProvider()
    with fp:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", fp.base_url)
        assert len(fake_threads()) == before + 1
        with httpx.Client(base_url=fp.base_url, trust_env=False) as c:
            assert chat(c).status_code == 200
            fp.close()  # with the client's keep-alive connection still open
            with pytest.raises(CONNECTION_FAILURES):
                chat(c)
    fp.close()  # idempotent
    assert len(fake_threads()) == before
    with pytest.raises(RuntimeError):
        fp.start()


def test_wait_for_requests_times_out(fp: FakeProvider) -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        fp.wait_for_requests(1, timeout=0.05)
    assert time.monotonic() - t0 < 1.0


# ---- OpenAI-compatible, plain httpx -----------------------------------------------------------


def test_openai_non_stream_shape_and_recording(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(ok("hi there", usage=(12, 3), cached=4))
    t0 = time.monotonic()
    r = client.post("/v1/chat/completions", headers={"Authorization": "Bearer sk-abc"},
                    json={"model": "gpt-fake", "messages": MSGS, "max_tokens": 77})
    t1 = time.monotonic()
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "gpt-fake"
    assert isinstance(data["id"], str) and isinstance(data["created"], int)
    assert data["choices"] == [{"index": 0, "logprobs": None, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "hi there"}}]
    assert data["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                             "prompt_tokens_details": {"cached_tokens": 4}}
    [rec] = fp.wait_for_requests(1)
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.headers["authorization"] == "Bearer sk-abc"
    assert rec.json["max_tokens"] == 77 and rec.model == "gpt-fake" and not rec.stream
    assert t0 <= rec.time <= t1
    assert rec.step == Ok(text="hi there", usage=(12, 3), cached=4)


def test_chat_path_under_any_prefix_and_usage_omitted(fp: FakeProvider,
                                                      client: httpx.Client) -> None:
    fp.script(ok("gemini", usage=None))
    r = client.post("/v1beta/openai/chat/completions?alt=x",
                    json={"model": "gemini-fake", "messages": MSGS})
    assert r.status_code == 200
    data = r.json()
    assert data["choices"][0]["message"]["content"] == "gemini" and "usage" not in data
    rec = fp.requests[0]
    assert rec.path == "/v1beta/openai/chat/completions" and rec.target.endswith("?alt=x")


def test_keep_alive_serves_many_requests_per_connection(fp: FakeProvider,
                                                        client: httpx.Client) -> None:
    for i in range(20):
        fp.script(ok(f"reply {i}"))
    texts = [chat(client).json()["choices"][0]["message"]["content"] for _ in range(20)]
    assert texts == [f"reply {i}" for i in range(20)]
    assert {r.connection for r in fp.requests} == {1}
    assert fp.connections_opened == 1


def test_chunked_request_body_is_read(fp: FakeProvider, client: httpx.Client) -> None:
    payload = json.dumps({"model": "gpt-fake", "messages": MSGS}).encode()
    r = client.post("/v1/chat/completions", content=iter([payload[:10], payload[10:]]))
    assert r.status_code == 200
    [rec] = fp.requests
    assert rec.headers["transfer-encoding"] == "chunked"
    assert rec.json == {"model": "gpt-fake", "messages": MSGS}


def test_routing_errors(fp: FakeProvider, client: httpx.Client) -> None:
    assert client.get("/v1/nope").status_code == 404
    assert client.get("/v1/chat/completions").status_code == 405
    r = client.post("/v1/chat/completions", content=b"not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert [rec.step for rec in fp.requests] == [None, None, None]


def test_openai_stream_over_httpx_is_chunked_sse(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(ok("one two three", usage=(5, 3), cached=2))
    body = {"model": "gpt-fake", "messages": MSGS, "stream": True,
            "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    events = sse_events(text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-fake"
               for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-1]) == (
        "one two three")
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 2}
    assert chunks[-1]["usage"]["total_tokens"] == 8
    assert fp.requests[0].stream


def test_close_delimited_stream(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(ok_stream("a b", chunked=False))
    with client.stream("POST", "/v1/chat/completions",
                       json={"model": "gpt-fake", "messages": MSGS}) as r:
        assert "transfer-encoding" not in r.headers and r.headers["connection"] == "close"
        events = sse_events(r.read().decode())
    assert events[-1] == (None, "[DONE]")  # no include_usage: no usage chunk
    assert all("usage" not in json.loads(d) for _, d in events[:-1])


# ---- OpenAI SDK -------------------------------------------------------------------------------


def test_openai_sdk_non_stream(fp: FakeProvider, sdk: openai.OpenAI) -> None:
    fp.script(ok("sdk says hi", usage=(7, 2), cached=5))
    resp = sdk.chat.completions.create(model="gpt-fake", messages=MSGS,
                                       max_tokens=10)
    assert resp.choices[0].message.content == "sdk says hi"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "gpt-fake"
    assert resp.usage is not None and resp.usage.total_tokens == 9
    assert resp.usage.prompt_tokens_details is not None
    assert resp.usage.prompt_tokens_details.cached_tokens == 5
    [rec] = fp.requests
    assert rec.headers["authorization"] == "Bearer sk-test" and rec.json["max_tokens"] == 10


def test_openai_sdk_stream_with_usage(fp: FakeProvider, sdk: openai.OpenAI) -> None:
    fp.script(ok("streamed reply here", usage=(9, 4), chunks=3))
    stream = sdk.chat.completions.create(model="gpt-fake", messages=MSGS,
                                         stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed reply here"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (9, 4)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 3


def test_openai_sdk_tool_calls(fp: FakeProvider, sdk: openai.OpenAI) -> None:
    args = {"city": "Paris", "unit": "celsius"}
    fp.script(ok("", tool_calls=[tool_call("get_weather", args, id="call_1")]),
              ok("", tool_calls=[tool_call("get_weather", args)]))
    resp = sdk.chat.completions.create(model="gpt-fake", messages=MSGS)
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls" and msg.content is None
    assert msg.tool_calls is not None and len(msg.tool_calls) == 1
    call: Any = msg.tool_calls[0]
    assert call.id == "call_1" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == args

    stream = sdk.chat.completions.create(model="gpt-fake", messages=MSGS,
                                         stream=True)
    name, parts, finish = None, [], None
    for chunk in stream:
        choice = chunk.choices[0]
        for tc in choice.delta.tool_calls or []:
            name = tc.function.name if tc.function and tc.function.name else name
            parts.append(tc.function.arguments if tc.function and tc.function.arguments else "")
        finish = choice.finish_reason or finish
    assert name == "get_weather" and finish == "tool_calls"
    assert json.loads("".join(parts)) == args and len([p for p in parts if p]) > 1


def test_openai_sdk_async_stream_under_asyncio_run(fp: FakeProvider) -> None:
    fp.script(ok("async hello"))

    async def main() -> str:
        async with openai.AsyncOpenAI(base_url=fp.base_url + "/v1", api_key="sk-test",
                                      max_retries=0) as aclient:
            stream = await aclient.chat.completions.create(
                model="gpt-fake", messages=MSGS, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream
                            if c.choices])

    assert asyncio.run(main()) == "async hello"


# ---- Anthropic Messages -----------------------------------------------------------------------


def test_anthropic_non_stream(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(ok("bonjour", usage=(20, 6), cached=10),
              ok("let me check", tool_calls=[tool_call("lookup", {"q": "x"}, id="toolu_9")]))
    data = messages(client).json()
    assert data["id"].startswith("msg_") and data["type"] == "message"
    assert (data["role"], data["model"]) == ("assistant", "claude-fake")
    assert data["content"] == [{"type": "text", "text": "bonjour"}]
    assert (data["stop_reason"], data["stop_sequence"]) == ("end_turn", None)
    assert data["usage"]["input_tokens"] == 20 and data["usage"]["output_tokens"] == 6
    assert data["usage"]["cache_read_input_tokens"] == 10
    data = messages(client).json()
    assert data["stop_reason"] == "tool_use"
    assert data["content"] == [{"type": "text", "text": "let me check"},
                               {"type": "tool_use", "id": "toolu_9", "name": "lookup",
                                "input": {"q": "x"}}]
    rec = fp.requests[0]
    assert rec.headers["x-api-key"] == "sk-ant-test"
    assert rec.headers["anthropic-version"] == "2023-06-01"


def test_anthropic_stream_event_sequence(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(ok("one two three", usage=(11, 3), finish_reason="length"))
    with client.stream("POST", "/v1/messages", headers=ANTHROPIC_HEADERS,
                       json={"model": "claude-fake", "max_tokens": 3, "messages": MSGS,
                             "stream": True}) as r:
        assert r.headers["transfer-encoding"] == "chunked"
        events = sse_events(r.read().decode())
    names = [e for e, _ in events]
    assert names == ["message_start", "ping", "content_block_start", "content_block_delta",
                     "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    payloads = [json.loads(d) for _, d in events]
    assert all(p["type"] == n for p, n in zip(payloads, names, strict=True))
    start = payloads[0]["message"]
    assert start["model"] == "claude-fake" and start["usage"]["input_tokens"] == 11
    assert "".join(p["delta"]["text"] for p in payloads[3:6]) == "one two three"
    assert payloads[7]["delta"]["stop_reason"] == "max_tokens"
    assert payloads[7]["usage"] == {"output_tokens": 3}


def test_anthropic_stream_tool_use(fp: FakeProvider, client: httpx.Client) -> None:
    args = {"path": "/tmp/x", "lines": [1, 2, 3]}
    fp.script(ok("", tool_calls=[tool_call("read_file", args)]))
    with client.stream("POST", "/v1/messages", headers=ANTHROPIC_HEADERS,
                       json={"model": "claude-fake", "max_tokens": 64, "messages": MSGS,
                             "stream": True}) as r:
        payloads = [json.loads(d) for _, d in sse_events(r.read().decode())]
    [block] = [p for p in payloads if p["type"] == "content_block_start"]
    assert block["index"] == 0 and block["content_block"]["type"] == "tool_use"
    assert block["content_block"]["name"] == "read_file"
    assert block["content_block"]["id"].startswith("toolu_")
    deltas = [p["delta"] for p in payloads if p["type"] == "content_block_delta"]
    assert {d["type"] for d in deltas} == {"input_json_delta"} and len(deltas) > 1
    assert json.loads("".join(d["partial_json"] for d in deltas)) == args
    [md] = [p for p in payloads if p["type"] == "message_delta"]
    assert md["delta"]["stop_reason"] == "tool_use"


# ---- model listings ---------------------------------------------------------------------------


def test_model_listings() -> None:
    with FakeProvider(models=["m-a", "m-b"]) as fp, \
            httpx.Client(base_url=fp.base_url, trust_env=False) as c:
        assert c.get("/v1/models").json() == {"object": "list", "data": [
            {"id": "m-a", "object": "model", "created": 1735689600, "owned_by": "fake"},
            {"id": "m-b", "object": "model", "created": 1735689600, "owned_by": "fake"}]}
        listing = c.get("/v1/models", headers=ANTHROPIC_HEADERS).json()
        assert [(m["type"], m["id"]) for m in listing["data"]] == [("model", "m-a"),
                                                                    ("model", "m-b")]
        assert listing["has_more"] is False
        assert c.get("/v1/models/m-b").json()["id"] == "m-b"
        fp.script_models(status(503))
        assert c.get("/v1/models").status_code == 503
        assert c.get("/v1/models").status_code == 200
        sdk = openai.OpenAI(base_url=fp.base_url + "/v1", api_key="k", max_retries=0)
        assert [m.id for m in sdk.models.list()] == ["m-a", "m-b"]
        sdk.close()
    with FakeProvider(models=["claude-x"], style="anthropic") as fp, \
            httpx.Client(base_url=fp.base_url, trust_env=False) as c:
        assert c.get("/v1/models").json()["data"][0]["type"] == "model"


# ---- scripting --------------------------------------------------------------------------------


def test_script_order_per_model_and_default(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(status(500), ok("shared"))
    fp.script_for("model-a", ok("for a"), status(400))
    assert fp.pending() == 4
    assert chat(client, "model-a").json()["choices"][0]["message"]["content"] == "for a"
    assert chat(client, "model-b").status_code == 500
    assert chat(client, "model-a").status_code == 400
    assert chat(client, "model-a").json()["choices"][0]["message"]["content"] == "shared"
    assert fp.pending() == 0
    assert chat(client, "model-b").json()["choices"][0]["message"]["content"] == (
        "Hello from the fake provider.")
    fp.set_default(status(503))
    assert chat(client).status_code == 503
    assert isinstance(fp.requests[-1].step, Status)
    fp.clear()
    assert fp.requests == [] and fp.pending() == 0


def test_api_key_checked_for_both_dialects() -> None:
    with FakeProvider(api_key="sk-test-123") as fp, \
            httpx.Client(base_url=fp.base_url, trust_env=False) as c:
        fp.script(ok("after auth"))
        r = c.post("/v1/chat/completions", headers={"Authorization": "Bearer wrong"},
                   json={"model": "m", "messages": MSGS})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        r = c.post("/v1/messages", headers={"x-api-key": "wrong", "anthropic-version": "x"},
                   json={"model": "m", "messages": MSGS})
        assert r.status_code == 401
        assert r.json() == {"type": "error", "error": {"type": "authentication_error",
                                                       "message": "invalid x-api-key"}}
        assert fp.pending() == 1  # rejected requests consume no step
        bad = openai.OpenAI(base_url=fp.base_url + "/v1", api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="m", messages=MSGS)
        bad.close()
        r = c.post("/v1/chat/completions", headers={"Authorization": "Bearer sk-test-123"},
                   json={"model": "m", "messages": MSGS})
        assert r.json()["choices"][0]["message"]["content"] == "after auth"
        r = c.post("/v1/messages", headers={"x-api-key": "sk-test-123",
                                            "anthropic-version": "2023-06-01"},
                   json={"model": "m", "max_tokens": 5, "messages": MSGS})
        assert r.status_code == 200 and r.json()["type"] == "message"


# ---- faults -----------------------------------------------------------------------------------


def test_429_with_retry_after(fp: FakeProvider, client: httpx.Client,
                              sdk: openai.OpenAI) -> None:
    fp.script(status(429, headers={"Retry-After": "2"}),
              status(429, headers={"Retry-After": "2"}),
              status(429, headers={"retry-after": "7"}))
    r = chat(client)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    r = messages(client)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json()["error"]["type"] == "rate_limit_error"
    with pytest.raises(openai.RateLimitError) as info:
        sdk.chat.completions.create(model="gpt-fake", messages=MSGS)
    assert info.value.response.headers["retry-after"] == "7"
    assert len(fp.requests) == 3


@pytest.mark.parametrize(("code", "openai_type", "anthropic_type"), [
    (400, "invalid_request_error", "invalid_request_error"),
    (500, "server_error", "api_error"),
    (503, "server_error", "api_error"),
    (529, "server_error", "overloaded_error"),
])
def test_error_statuses_have_provider_shapes(fp: FakeProvider, client: httpx.Client, code: int,
                                             openai_type: str, anthropic_type: str) -> None:
    fp.script(status(code, message="boom"), status(code))
    r = chat(client)
    assert r.status_code == code
    assert r.json()["error"] == {"message": "boom", "type": openai_type, "param": None,
                                 "code": None}
    r = messages(client)
    assert r.status_code == code and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == anthropic_type


def test_custom_error_body(fp: FakeProvider, client: httpx.Client, sdk: openai.OpenAI) -> None:
    fp.script(status(500, body="upstream exploded", content_type="text/plain"),
              status(500, body={"error": {"message": "custom"}}))
    r = chat(client)
    assert r.text == "upstream exploded" and r.headers["content-type"] == "text/plain"
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="gpt-fake", messages=MSGS)


def test_delay_times_out_client_without_blocking_others(fp: FakeProvider) -> None:
    fp.script_for("slow", delay(2.0))
    errors: list[BaseException] = []

    def slow_call() -> None:
        with httpx.Client(base_url=fp.base_url, trust_env=False, timeout=0.3) as c:
            try:
                chat(c, "slow")
            except BaseException as exc:
                errors.append(exc)

    t0 = time.monotonic()
    thread = threading.Thread(target=slow_call)
    thread.start()
    fp.wait_for_requests(1)
    with httpx.Client(base_url=fp.base_url, trust_env=False, timeout=5.0) as fast:
        for _ in range(5):
            assert chat(fast, "fast").status_code == 200
    fast_done = time.monotonic() - t0
    thread.join()
    assert fast_done < 1.5  # answered while the slow request was still sleeping (2 s)
    assert len(errors) == 1 and isinstance(errors[0], httpx.ReadTimeout)


def test_delay_then_answers_late(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(delay(0.15, then=status(503)), ok("fine"))
    t0 = time.monotonic()
    assert chat(client).status_code == 503
    assert time.monotonic() - t0 >= 0.15
    assert chat(client).status_code == 200
    first, second = fp.requests
    assert second.time - first.time >= 0.15  # when each attempt arrived


def test_timeout_seen_by_async_client(fp: FakeProvider) -> None:
    fp.script_for("slow", delay(2.0))

    async def main() -> tuple[BaseException | httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=fp.base_url, trust_env=False) as c:
            # only the read is bounded tight: on a loaded box connecting alone can take 0.2 s
            slow = c.post("/v1/chat/completions", timeout=httpx.Timeout(5.0, read=0.2),
                          json={"model": "slow", "messages": MSGS})
            fast = c.post("/v1/chat/completions", json={"model": "fast", "messages": MSGS})
            a, b = await asyncio.gather(slow, fast, return_exceptions=True)
            assert isinstance(b, httpx.Response)
            return a, b

    slow, fast = asyncio.run(main())
    assert isinstance(slow, httpx.ReadTimeout), repr(slow)
    assert fast.status_code == 200


def test_reset_drops_connection(fp: FakeProvider, client: httpx.Client,
                                sdk: openai.OpenAI) -> None:
    fp.script(reset(), reset(rst=False), reset())
    with pytest.raises(httpx.ReadError):  # RST: "connection reset by peer"
        chat(client)
    with pytest.raises(httpx.RemoteProtocolError):  # FIN: "disconnected without response"
        chat(client)
    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(model="gpt-fake", messages=MSGS)
    assert chat(client).status_code == 200  # the server keeps serving
    assert len(fp.requests) == 4


def test_malformed_bodies(fp: FakeProvider, client: httpx.Client, sdk: openai.OpenAI) -> None:
    fp.script(malformed(), malformed("wrong_shape"), malformed("wrong_shape"),
              malformed("empty"), malformed())
    r = chat(client)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    assert chat(client).json()["choices"] == "nope"
    assert messages(client).json()["content"] == "nope"
    assert chat(client).content == b""
    with pytest.raises((ValueError, openai.APIError)):
        sdk.chat.completions.create(model="gpt-fake", messages=MSGS)


def test_malformed_stream_events(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(malformed(), malformed("wrong_shape"))
    with client.stream("POST", "/v1/chat/completions",
                       json={"model": "m", "messages": MSGS, "stream": True}) as r:
        events = sse_events(r.read().decode())
    assert events == [(None, "this is not json {"), (None, "[DONE]")]
    with client.stream("POST", "/v1/messages", headers=ANTHROPIC_HEADERS,
                       json={"model": "m", "messages": MSGS, "stream": True}) as r:
        [(name, data)] = sse_events(r.read().decode())
    assert name == "message_start" and json.loads(data)["message"] == "nope"


def test_stream_drop_over_httpx(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(stream_drop(after_chunks=2), stream_drop(after_chunks=3))
    seen: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError), client.stream(
            "POST", "/v1/chat/completions",
            json={"model": "m", "messages": MSGS, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                seen.append(line)
    deltas = [json.loads(s[6:])["choices"][0]["delta"] for s in seen]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "word0"},
                      {"content": " word1"}]
    texts: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError), client.stream(
            "POST", "/v1/messages", headers=ANTHROPIC_HEADERS,
            json={"model": "m", "messages": MSGS, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and "text_delta" in line:
                texts.append(json.loads(line[6:])["delta"]["text"])
    assert texts == ["word0", " word1", " word2"]


def test_stream_drop_seen_by_openai_sdk(fp: FakeProvider, sdk: openai.OpenAI) -> None:
    fp.script(stream_drop(after_chunks=2, text="alpha beta gamma delta"))
    got: list[str] = []
    stream = sdk.chat.completions.create(model="m", messages=MSGS,
                                         stream=True)
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "alpha beta"


def test_stream_drop_on_non_stream_request_truncates_body(fp: FakeProvider,
                                                          client: httpx.Client) -> None:
    fp.script(stream_drop())
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client)


def test_stream_error_events(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(stream_error(after_chunks=1, code=503, message="busy"),
              stream_error(after_chunks=2), stream_error(code=429))
    with client.stream("POST", "/v1/chat/completions",
                       json={"model": "m", "messages": MSGS, "stream": True}) as r:
        events = sse_events(r.read().decode())
    assert json.loads(events[-1][1]) == {"error": {"message": "busy", "type": "server_error",
                                                   "param": None, "code": None}}
    assert len(events) == 3  # role delta, one content delta, the error
    with client.stream("POST", "/v1/messages", headers=ANTHROPIC_HEADERS,
                       json={"model": "m", "messages": MSGS, "stream": True}) as r:
        events = sse_events(r.read().decode())
    assert events[-1][0] == "error"
    assert json.loads(events[-1][1])["error"]["type"] == "overloaded_error"
    assert [e for e, _ in events].count("content_block_delta") == 2
    assert chat(client).status_code == 429  # non-stream request: a plain error status


def test_slow_stream_times_out_mid_stream(fp: FakeProvider) -> None:
    fp.script(ok("a b c d", chunk_delay=0.3))
    with httpx.Client(base_url=fp.base_url, trust_env=False,
                      timeout=httpx.Timeout(5.0, read=0.1)) as c:
        got: list[str] = []
        with pytest.raises(httpx.ReadTimeout), c.stream(
                "POST", "/v1/chat/completions",
                json={"model": "m", "messages": MSGS, "stream": True}) as r:
            for line in r.iter_lines():
                got.append(line)
        assert got and got[0].startswith("data: ")


# ---- concurrency ------------------------------------------------------------------------------


def test_200_concurrent_keep_alive_connections(fp: FakeProvider) -> None:
    """The server side of a burst: 200 connections open at once, 3 requests on each. (Raw
    asyncio streams as the client: httpcore's pool is quadratic in pending requests, so an
    httpx client would measure itself.)"""
    n, per_conn = 200, 3
    body = json.dumps({"model": "gpt-fake", "messages": MSGS}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: fake\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
               % (len(body), body))

    async def main() -> list[list[dict[str, Any]]]:
        barrier = asyncio.Barrier(n)

        async def one() -> list[dict[str, Any]]:
            reader, writer = await asyncio.open_connection("127.0.0.1", fp.port)
            out: list[dict[str, Any]] = []
            for _ in range(per_conn):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK\r\n")
                length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])  # type: ignore[index]
                out.append(json.loads(await reader.readexactly(length)))
                if len(out) == 1:
                    await barrier.wait()  # every connection is open at this point
            writer.close()
            await writer.wait_closed()
            return out

        return await asyncio.gather(*(one() for _ in range(n)))

    t0 = time.monotonic()
    results = asyncio.run(main())
    elapsed = time.monotonic() - t0
    assert all(r["object"] == "chat.completion" for rs in results for r in rs)
    assert fp.connections_opened == n and len(fp.requests) == n * per_conn
    assert elapsed < 2.0


def test_concurrent_httpx_async_client(fp: FakeProvider) -> None:
    n = 50
    for i in range(n):
        fp.script_for(f"m{i}", ok(f"r{i}"))

    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=fp.base_url, trust_env=False, limits=limits,
                                     timeout=10.0) as c:
            async def one(i: int) -> httpx.Response:
                body = {"model": f"m{i}", "messages": MSGS, "stream": i % 2 == 0}
                r = await c.post("/v1/chat/completions", json=body)
                await r.aread()
                return r
            return await asyncio.gather(*(one(i) for i in range(n)))

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * n
    for i, r in enumerate(responses):
        if i % 2:
            assert r.json()["choices"][0]["message"]["content"] == f"r{i}"
        else:
            assert f'"content":"r{i}"' in r.text
    assert len(fp.requests) == n and fp.pending() == 0
