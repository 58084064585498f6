"""Fuzzing dispatch with malformed and adversarial provider answers (issue 11): a real loopback
server answers `complete` and `stream` with generated status codes, headers, framings and
bodies (truncated JSON, invalid UTF-8, deep nesting, NaN, huge numbers, SSE garbage, oversized
events, keys echoed back). Every call must end in a documented outcome with its attempt
recorded, a strictly-JSON record without the key, and nothing logged as unclassified."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from router.config import RouterConfig
from router.dispatch.completion import CascadeExhausted, Completion, ProviderRejected
from router.facade import Router
from router.live.health import BreakerSettings
from tests.dispatch_support import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    Clock,
    catalog,
    environ,
    policy,
    request,
)
from tests.fakes import FakeProvider, Raw

FAILURE_KINDS = {"error", "timeout", "rate_limit", "bad_request"}
POLICIES = {dialect: policy(cascade=0, filters=[["in", "provider", [dialect]]],
                            fallback=[["timeout_ms", 5000]])
            for dialect in ("openai", "anthropic")}
FUZZ = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Rig:
    fakes: dict[str, FakeProvider]
    router: Router
    loop: asyncio.AbstractEventLoop  # one loop (and so one client pool) for every example
    logs: Collect


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    loop = asyncio.new_event_loop()
    with FakeProvider(api_key=OPENAI_KEY) as oa, \
            FakeProvider(api_key=ANTHROPIC_KEY, style="anthropic") as an:
        clock = Clock()
        config = RouterConfig(clock=clock, environ=environ(oa.base_url, an.base_url),
                              sleep=clock.sleep, rng=random.Random(1), pool_shards=1,
                              breaker=BreakerSettings(failure_threshold=10**9))
        router = Router(catalog(), config=config)
        try:
            yield Rig({"openai": oa, "anthropic": an}, router, loop, handler)
        finally:
            loop.run_until_complete(router.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            router.close()
            root.removeHandler(handler)


# -- generated answers ------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


Framing = Literal["length", "chunked", "close"]
FRAMINGS: tuple[Framing, ...] = ("length", "chunked", "close")
JUNK_NUMBERS: st.SearchStrategy[Any] = st.sampled_from(
    [0, -1, 7, 10**12 + 1, 2**63, 1.5, "12", None, True, [], {}])
TEXT = st.text(max_size=40)


@st.composite
def openai_completion(draw: st.DrawFn) -> dict[str, Any]:
    message: Any = draw(st.sampled_from([
        {"role": "assistant", "content": draw(TEXT)},
        {"role": "assistant", "content": draw(TEXT)},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{"}}]},
        "text", None, {}]))
    body: dict[str, Any] = {"id": "x", "object": "chat.completion",
                            "choices": draw(st.sampled_from(
                                [[{"index": 0, "message": message, "finish_reason": "stop"}]]
                                * 3 + [[], "nope", [None]]))}
    if draw(st.booleans()):
        body["usage"] = {"prompt_tokens": draw(JUNK_NUMBERS),
                         "completion_tokens": draw(JUNK_NUMBERS),
                         "prompt_tokens_details": draw(st.sampled_from(
                             [{"cached_tokens": 3}, {"cached_tokens": 10**13}, None, "x"]))}
    return body


@st.composite
def anthropic_message(draw: st.DrawFn) -> dict[str, Any]:
    block = draw(st.sampled_from([
        {"type": "text", "text": draw(TEXT)},
        {"type": "text", "text": draw(TEXT)},
        {"type": "tool_use", "id": "t", "name": "f", "input": {"a": [1]}},
        {"type": "tool_use", "id": "t", "name": "f", "input": "not an object"},
        {"type": "thinking", "thinking": "..."}, {"type": 3}, "text"]))
    body: dict[str, Any] = {"id": draw(st.sampled_from(["msg_1", "msg_1", 1, None])),
                            "type": "message", "role": "assistant",
                            "content": draw(st.sampled_from([[block], [block], [], "nope"])),
                            "stop_reason": draw(st.sampled_from(["end_turn", "tool_use", 5,
                                                                 None, "brand_new"]))}
    if draw(st.booleans()):
        usage = {"input_tokens": draw(JUNK_NUMBERS), "output_tokens": draw(JUNK_NUMBERS)}
        if draw(st.booleans()):
            usage["cache_read_input_tokens"] = draw(JUNK_NUMBERS)
        body["usage"] = usage
    return body


def nested(depth: int, opener: bytes, closer: bytes, leaf: bytes = b"1") -> bytes:
    return opener * depth + leaf + closer * depth


def error_echo(key: str) -> bytes:
    return dumps({"error": {"message": f"invalid key {key}", "type": "auth", "echo": [key]}})


@st.composite
def json_bodies(draw: st.DrawFn, dialect: str) -> bytes:
    """A JSON answer: a correct or oddly shaped body, often then damaged in one way."""
    if draw(st.booleans()):
        valid = draw(well_formed(dialect, streamed=False)).body
    else:
        valid = dumps(draw(openai_completion() if dialect == "openai"
                           else anthropic_message()))
    kind = draw(st.sampled_from(["valid"] * 4 + ["truncated", "utf8", "deep", "nan",
                                                 "digits", "binary", "empty", "echo", "bom",
                                                 "big"]))
    if kind == "valid":
        return valid
    if kind == "truncated":
        return valid[: draw(st.integers(0, max(0, len(valid) - 1)))]
    if kind == "utf8":
        at = draw(st.integers(0, len(valid)))
        return valid[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80",
                                                  b"\xf4\x90\x80\x80"])) + valid[at:]
    if kind == "deep":
        depth = draw(st.sampled_from([40, 70, 600, 990, 5000, 100_000]))
        return draw(st.sampled_from([
            nested(depth, b"[", b"]"),
            b'{"error":' + nested(depth, b'{"e":', b"}") + b"}",
            valid[:-1] + b',"extra":' + nested(depth, b"[", b"]") + b"}"]))
    if kind == "nan":
        return valid.replace(b'"index":0', b'"index":NaN').replace(
            b'"id":"msg_1"', b'"id":"msg_1","n":-Infinity')
    if kind == "digits":
        return b'{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":' \
            + b"9" * draw(st.sampled_from([20, 5000])) + b',"completion_tokens":1}}'
    if kind == "binary":
        return draw(st.binary(max_size=256))
    if kind == "empty":
        return b""
    if kind == "echo":
        return error_echo(OPENAI_KEY if dialect == "openai" else ANTHROPIC_KEY)
    if kind == "bom":
        return b"\xef\xbb\xbf" + valid
    return dumps({"choices": [{"message": {"role": "assistant", "content": "x" * (3 << 20)}}]})


@st.composite
def sse_bodies(draw: st.DrawFn, dialect: str) -> bytes:
    openai_chunk = {"id": "c", "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    final = {**openai_chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    start = {"type": "message_start", "message": {"id": "msg_1", "usage": {
        "input_tokens": 3, "output_tokens": 1}}}
    pieces = {
        "openai": [b"data: " + dumps(openai_chunk), b"data: " + dumps(final), b"data: [DONE]",
                   b"data: " + dumps({"choices": [], "usage": {"prompt_tokens": 1,
                                                               "completion_tokens": 2}}),
                   b'data: {"error":' + nested(70, b"[", b"]") + b"}",
                   b'data: {"error":{"message":"' + OPENAI_KEY.encode() + b'"}}'],
        "anthropic": [b"event: message_start\ndata: " + dumps(start),
                      b'event: content_block_start\ndata: {"type":"content_block_start",'
                      b'"index":0,"content_block":{"type":"text","text":""}}',
                      b'event: content_block_delta\ndata: {"type":"content_block_delta",'
                      b'"index":0,"delta":{"type":"text_delta","text":"hi"}}',
                      b'event: message_delta\ndata: {"type":"message_delta",'
                      b'"delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}',
                      b'event: message_stop\ndata: {"type":"message_stop"}',
                      b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                      b'"message":"' + ANTHROPIC_KEY.encode() + b'"}}',
                      b'event: content_block_delta\ndata: {"type":"content_block_delta",'
                      b'"index":9,"delta":{"type":"text_delta","text":"x"}}'],
    }[dialect]
    garbage = [b"data: {", b"data: not json", b": keep-alive", b"event: message_start",
               b"data: \xff\xfe", b"retry: 10", b"id: \x00", b"data: null", b"data: []",
               b'data: {"choices": NaN}', b"data: " + b"x" * (1 << 20 | 7),
               b"data: " + nested(100, b"[", b"]")]
    shape = draw(st.sampled_from(["clean", "clean", "spliced", "spliced", "random"]))
    events = [] if shape == "clean" else draw(st.lists(st.sampled_from(pieces + garbage),
                                                       max_size=8))
    if shape != "random":  # a well-formed stream, perhaps with other events spliced in
        events = pieces[:5] + events if dialect == "anthropic" else \
            [pieces[0], *events, pieces[1], pieces[3], pieces[2]]
    separator = draw(st.sampled_from([b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\n", b"\n"]))
    body = separator.join(events) + separator
    if shape != "clean" and draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return body


@st.composite
def well_formed(draw: st.DrawFn, dialect: str, streamed: bool) -> Raw:
    """A correct answer with generated text, usage and framing (the success paths)."""
    text, usage = draw(TEXT), draw(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)))
    framing: Framing = draw(st.sampled_from(FRAMINGS))
    if streamed:
        if dialect == "openai":
            chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"content": text}, "finish_reason": None}]}
            stop = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            tail = {"id": "c", "object": "chat.completion.chunk", "choices": [],
                    "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}}
            events = [b"data: " + dumps(e) for e in (chunk, stop, tail)] + [b"data: [DONE]"]
        else:
            events = [
                b"event: message_start\ndata: " + dumps({"type": "message_start", "message": {
                    "id": "msg_1", "usage": {"input_tokens": usage[0], "output_tokens": 1}}}),
                b"event: content_block_start\ndata: " + dumps({
                    "type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                b"event: content_block_delta\ndata: " + dumps({
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": text}}),
                b"event: message_delta\ndata: " + dumps({
                    "type": "message_delta", "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": usage[1]}}),
                b'event: message_stop\ndata: {"type":"message_stop"}']
        return Raw(200, b"\n\n".join(events) + b"\n\n", content_type="text/event-stream",
                   framing=framing)
    if dialect == "openai":
        body = {"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text},
             "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}}
    else:
        body = {"id": "msg_1", "type": "message", "role": "assistant",
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}
    return Raw(200, dumps(body), framing=framing)


@st.composite
def answers(draw: st.DrawFn, dialect: str, streamed: bool) -> Raw:
    if draw(st.integers(0, 2)) == 0:
        return draw(well_formed(dialect, streamed))
    code = draw(st.sampled_from([200] * 8 + [201, 204, 301, 400, 401, 404, 408, 413, 422,
                                             429, 500, 502, 503, 529, 599]))
    sse = streamed and (code == 200 or draw(st.booleans()))
    body = draw(sse_bodies(dialect) if sse else json_bodies(dialect))
    content_type = draw(st.sampled_from(["text/event-stream" if sse else "application/json",
                                         "text/html", "application/octet-stream", None,
                                         "application/json; charset=utf-16"]))
    headers = dict(draw(st.lists(st.sampled_from([
        ("Retry-After", "3"), ("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("Retry-After", "soon"), ("retry-after-ms", "-5"), ("retry-after-ms", "nan"),
        ("Content-Encoding", "gzip"), ("Content-Encoding", "identity"),
        ("X-Junk", "\u00ff"),
    ]), max_size=2)))
    framing: Framing = draw(st.sampled_from(FRAMINGS))
    length = None
    if framing == "length" and draw(st.integers(0, 4)) == 0:
        length = draw(st.sampled_from([0, max(0, len(body) - 1), len(body) + 10, 1 << 40]))
    repeat = 1 if body else 0
    return Raw(code=code, body=body, headers=tuple(headers.items()), content_type=content_type,
               repeat=repeat, framing=framing, length=length)


# -- the properties ---------------------------------------------------------------------------

Case = tuple[str, Raw]  # (dialect, answer)


def cases(streamed: bool) -> st.SearchStrategy[Case]:
    return st.sampled_from(["openai", "anthropic"]).flatmap(
        lambda dialect: st.tuples(st.just(dialect), answers(dialect, streamed)))


def pinned(streamed: bool) -> list[Case]:
    """The attacks of issue 11, run on every test run (the generated cases add to them)."""
    sse = "text/event-stream"
    ok_body = b'{"choices":[{"index":NaN,"message":{"role":"assistant","content":"x"}}]}'
    out: list[Case] = [
        ("openai", Raw(500, b'{"error":' + nested(600, b'{"e":', b"}") + b"}")),  # finding 5
        ("anthropic", Raw(400, nested(600, b"[", b"]"))),
        ("openai", Raw(200, ok_body)),  # NaN is not JSON
        ("openai", Raw(200, b'{"choices":[{"message":{"role":"assistant","content":"x",'
                            b'"extra":' + nested(300, b"[", b"]") + b"}}]}")),
        ("openai", Raw(200, b"[1]", length=1 << 40)),  # finding 3: a declared huge length
        ("openai", Raw(502, error_echo(OPENAI_KEY))),  # a key echoed back
        ("anthropic", Raw(529, error_echo(ANTHROPIC_KEY))),
        ("openai", Raw(200, b"\xff\xfe{}", framing="chunked")),
        ("openai", Raw(200, b"x" * 70_000, framing="chunked", repeat=20,
                       headers=(("Content-Encoding", "gzip"),))),
    ]
    if streamed:
        out += [
            ("openai", Raw(200, b"data: " + b"x" * (1 << 20), framing="chunked",
                           content_type=sse)),  # an endless line
            ("openai", Raw(200, b'data: {"error":' + nested(600, b"[", b"]") + b"}\n\n",
                           content_type=sse)),
            ("openai", Raw(200, b'data: {"choices":[{"index":0,"delta":{"content":"x"},'
                                b'"finish_reason":null}],"n":NaN}\n\n', content_type=sse)),
            ("anthropic", Raw(200, b'event: error\ndata: {"type":"error","error":{"type":'
                                   + nested(200, b"[", b"]") + b'}}\n\n', content_type=sse)),
        ]
    return out


T = TypeVar("T", bound=Callable[..., None])


def with_pinned(streamed: bool) -> Callable[[T], T]:
    def decorate(test: T) -> T:
        for case in pinned(streamed):
            test = example(case=case)(test)
        return test
    return decorate


@contextmanager
def usual_recursion_limit() -> Iterator[None]:
    """Hypothesis raises the recursion limit while a test runs (to 2000 and more); a provider's
    answer must not exhaust the stack at the interpreter's usual limit, so calls run under it."""
    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(raised)


def run(rig: Rig, call: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    with usual_recursion_limit():
        return rig.loop.run_until_complete(call)


def check_record(record: dict[str, Any], key: str) -> None:
    text = json.dumps(record, allow_nan=False)  # strict JSON, whatever the provider sent
    assert key not in text
    [attempt] = record["attempts"]  # one attempt (no retries, no cascade), always recorded
    assert attempt["outcome"] in FAILURE_KINDS | {"ok"}
    event(f"{attempt['outcome']}: {(attempt.get('detail') or '')[:48]}")
    if attempt["outcome"] == "ok":
        assert record["outcome"] in ("ok", "failed") and record["served_by"]
    else:
        assert record["outcome"] == "failed" and record["error"]["kind"] == attempt["outcome"]


def check_logs(handler: Collect) -> None:
    bad = [r for r in handler.records if r.name.startswith(("unhardcoded", "asyncio"))]
    handler.records.clear()
    assert bad == [], [r.getMessage() for r in bad]


@given(case=cases(streamed=False))
@with_pinned(streamed=False)
@FUZZ
def test_complete_survives_any_provider_answer(rig: Rig, case: Case) -> None:
    dialect, answer = case
    router = rig.router
    key = OPENAI_KEY if dialect == "openai" else ANTHROPIC_KEY
    rig.fakes[dialect].clear()
    rig.fakes[dialect].script(answer)

    async def go() -> dict[str, Any]:
        try:
            done = await router.complete(POLICIES[dialect], request())
        except (CascadeExhausted, ProviderRejected) as exc:
            assert exc.record["attempts"][0]["outcome"] in FAILURE_KINDS
            json.dumps(exc.to_json(), allow_nan=False)
            assert key not in str(exc)
            return exc.record
        assert isinstance(done, Completion)
        assert done.record()["usage"] is None or done.record()["cost_usd"] is not None
        json.dumps(done.response, allow_nan=False)
        assert done.response["choices"][0]["message"]["role"] == "assistant"
        return done.record()

    check_record(run(rig, go()), key)
    check_logs(rig.logs)


@given(case=cases(streamed=True))
@with_pinned(streamed=True)
@FUZZ
def test_stream_survives_any_provider_answer(rig: Rig, case: Case) -> None:
    dialect, answer = case
    router = rig.router
    key = OPENAI_KEY if dialect == "openai" else ANTHROPIC_KEY
    rig.fakes[dialect].clear()
    rig.fakes[dialect].script(answer)

    async def go() -> dict[str, Any]:
        try:
            stream = await router.stream(POLICIES[dialect], request())
            chunks = [chunk async for chunk in stream]
        except (CascadeExhausted, ProviderRejected) as exc:
            assert exc.record["attempts"][0]["outcome"] in FAILURE_KINDS
            assert key not in str(exc)
            return exc.record
        assert chunks  # `stream` returns only once a first chunk arrived
        json.dumps(chunks, allow_nan=False)
        record = stream.record()
        if record["outcome"] == "failed":  # failed after the first chunk: one error event
            assert chunks[-1]["error"]["type"] == "upstream_error"
            assert chunks[-1]["error"]["code"] == record["attempts"][0]["outcome"]
        return record

    check_record(run(rig, go()), key)
    check_logs(rig.logs)
