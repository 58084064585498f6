"""OpenAI chat completions ⇄ Anthropic Messages (`router.dispatch.providers.anthropic_translate`):
request mapping, response mapping, stream translation, and the errors with their pointers."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.dispatch.providers.anthropic_translate import (
    RESPONSE_FORMAT_TOOL,
    AnthropicStreamTranslator,
    StreamError,
    TranslationError,
    from_anthropic,
    to_anthropic,
)
from router.dispatch.providers.sse import SSEParser

MODEL = "claude-sonnet-4-5-20250929"
DEFAULT_MAX = 4096
USER = {"role": "user", "content": "hi"}
HI = {"role": "user", "content": [{"type": "text", "text": "hi"}]}


def req(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-4o", "messages": [USER]}
    body.update(fields)
    return body


def translate(body: Mapping[str, Any]) -> dict[str, Any]:
    return to_anthropic(body, MODEL, DEFAULT_MAX)


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def refused(body: Mapping[str, Any]) -> TranslationError:
    with pytest.raises(TranslationError) as info:
        translate(body)
    return info.value


# ---------------------------------------------------------------------------------------------
# requests


def test_minimal_request() -> None:
    assert translate(req()) == {"model": MODEL, "max_tokens": DEFAULT_MAX, "messages": [HI]}


def test_request_is_not_mutated() -> None:
    body = req(
        messages=[
            {"role": "system", "content": "s"},
            USER,
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "r"},
        ],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
    )
    before = copy.deepcopy(body)
    out = translate(body)
    assert body == before
    out["tools"][0]["input_schema"]["x"] = 1  # the output shares no schema with the input
    assert body == before


@pytest.mark.parametrize(
    ("messages", "system"),
    [
        ([{"role": "system", "content": "be brief"}, USER], "be brief"),
        ([{"role": "developer", "content": "dev"}, USER], "dev"),
        (
            [
                {"role": "system", "content": "one"},
                {"role": "developer", "content": [text("two"), text("three")]},
                USER,
                {"role": "system", "content": "late"},  # hoisted from mid-conversation
            ],
            "one\n\ntwo\nthree\n\nlate",
        ),
        ([{"role": "system", "content": ""}, {"role": "system", "content": None}, USER], None),
        ([{"role": "system", "content": [text(""), text("x")]}, USER], "x"),
    ],
)
def test_system_and_developer_are_hoisted(
    messages: list[dict[str, Any]], system: str | None
) -> None:
    out = translate(req(messages=messages))
    assert out.get("system") == system
    assert out["messages"] == [HI]


def test_system_with_image_part_is_refused() -> None:
    error = refused(req(messages=[
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]},
        USER,
    ]))
    assert error.pointer == "/messages/0/content/0/type"


@pytest.mark.parametrize(
    ("url", "source"),
    [
        (
            "data:image/png;base64,iVBORw0KGgo=",
            {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        ),
        (
            "data:IMAGE/JPEG;base64,/9j/4AAQ",
            {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
        ),
        (
            "data:image/webp;charset=binary;base64,UklGRg==",
            {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="},
        ),
        ("https://example.com/cat.gif", {"type": "url", "url": "https://example.com/cat.gif"}),
        ("http://example.com/a.png?x=1", {"type": "url", "url": "http://example.com/a.png?x=1"}),
    ],
)
def test_image_parts(url: str, source: dict[str, Any]) -> None:
    message = {"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]}
    out = translate(req(messages=[message]))
    assert out["messages"] == [{"role": "user", "content": [
        text("what is this?"), {"type": "image", "source": source},
    ]}]


def test_image_url_as_bare_string_and_cache_control() -> None:
    message = {"role": "user", "content": [
        {"type": "image_url", "image_url": "https://x/y.png",
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}},
    ]}
    assert translate(req(messages=[message]))["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"},
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}},
    ]


@pytest.mark.parametrize(
    ("part", "pointer"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}},
         "/messages/0/content/0/image_url/url"),
        ({"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}},
         "/messages/0/content/0/image_url/url"),
        ({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}},
         "/messages/0/content/0/image_url/url"),
        ({"type": "image_url", "image_url": {}}, "/messages/0/content/0/image_url/url"),
        ({"type": "image_url"}, "/messages/0/content/0/image_url"),
        ({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
         "/messages/0/content/0/type"),
        ({"type": "file", "file": {"file_id": "f"}}, "/messages/0/content/0/type"),
        ({"type": "text", "text": 5}, "/messages/0/content/0/text"),
        ("just a string", "/messages/0/content/0"),
    ],
)
def test_bad_user_parts(part: Any, pointer: str) -> None:
    assert refused(req(messages=[{"role": "user", "content": [part]}])).pointer == pointer


def test_image_in_assistant_content_is_refused() -> None:
    error = refused(req(messages=[USER, {"role": "assistant", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]))
    assert error.pointer == "/messages/1/content/0/type"


def test_assistant_refusal_part_becomes_text() -> None:
    out = translate(req(messages=[USER, {"role": "assistant", "content": [
        {"type": "refusal", "refusal": "I can't"}]}, USER]))
    assert out["messages"][1] == {"role": "assistant", "content": [text("I can't")]}


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_tool_round_trip_request() -> None:
    messages = [
        {"role": "system", "content": "use tools"},
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            call("toolu_1", "get_weather", '{"city": "Paris"}'),
            call("toolu_2", "get_weather", '{"city": "Rome", "unit": "c"}'),
        ]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [text("21"), text("C")]},
        {"role": "user", "content": "thanks, and tomorrow?"},
        {"role": "assistant", "content": None, "tool_calls": [
            call("toolu_3", "get_weather", "")]},
        {"role": "tool", "tool_call_id": "toolu_3", "content": ""},
    ]
    assert translate(req(messages=messages)) == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX,
        "system": "use tools",
        "messages": [
            {"role": "user", "content": [text("weather in Paris and Rome?")]},
            {"role": "assistant", "content": [
                text("Checking."),
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                 "input": {"city": "Rome", "unit": "c"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2",
                 "content": [text("21"), text("C")]},
                text("thanks, and tomorrow?"),
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_3", "name": "get_weather", "input": {}},
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_3"}]},
        ],
    }


def test_tool_results_open_a_merged_user_turn() -> None:
    messages = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call("t1", "f", "{}")]},
        {"role": "user", "content": "a note before the result"},
        {"role": "tool", "tool_call_id": "t1", "content": "done"},
    ]
    assert translate(req(messages=messages))["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "done"},
        text("a note before the result"),
    ]}


def test_consecutive_same_role_messages_merge() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": [text("b")], "name": "bob"},
        {"role": "system", "content": "s"},  # hoisted: does not break the run
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": [text("e")]},
    ]
    out = translate(req(messages=messages))
    assert out["system"] == "s"
    assert out["messages"] == [
        {"role": "user", "content": [text("a"), text("b"), text("c")]},
        {"role": "assistant", "content": [text("d"), text("e")]},
    ]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": [1, 2], "b": {"c": null}}', {"a": [1, 2], "b": {"c": None}}),
        ("", {}),
        ("   ", {}),
        ({"already": "parsed"}, {"already": "parsed"}),
    ],
)
def test_tool_call_arguments(arguments: Any, expected: dict[str, Any]) -> None:
    assistant = {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]}
    out = translate(req(messages=[USER, assistant]))
    assert out["messages"][1]["content"][0]["input"] == expected


@pytest.mark.parametrize(
    ("tool_call", "pointer"),
    [
        (call("c", "f", "{not json"), "/messages/3/tool_calls/1/function/arguments"),
        (call("c", "f", "[1, 2]"), "/messages/3/tool_calls/1/function/arguments"),
        (call("c", "f", '"a string"'), "/messages/3/tool_calls/1/function/arguments"),
        ({"id": "c", "type": "function", "function": {"name": "f", "arguments": 3}},
         "/messages/3/tool_calls/1/function/arguments"),
        ({"type": "function", "function": {"name": "f", "arguments": "{}"}},
         "/messages/3/tool_calls/1/id"),
        ({"id": "c", "type": "function", "function": {"arguments": "{}"}},
         "/messages/3/tool_calls/1/function/name"),
        ({"id": "c", "type": "custom", "custom": {"name": "f", "input": "x"}},
         "/messages/3/tool_calls/1/type"),
        ({"id": "c", "type": "function"}, "/messages/3/tool_calls/1/function"),
    ],
)
def test_bad_tool_calls_point_at_the_culprit(tool_call: dict[str, Any], pointer: str) -> None:
    messages = [
        {"role": "system", "content": "s"},
        USER,
        {"role": "assistant", "content": "x"},
        {"role": "assistant", "content": None, "tool_calls": [call("ok", "f", "{}"), tool_call]},
    ]
    error = refused(req(messages=messages))
    assert error.pointer == pointer
    assert str(error).endswith(f"(at {pointer})")


@pytest.mark.parametrize(
    ("messages", "pointer"),
    [
        (None, "/messages"),
        ("hi", "/messages"),
        ([], "/messages"),
        ([{"role": "system", "content": "only system"}], "/messages"),
        ([USER, "nope"], "/messages/1"),
        ([{"role": "wizard", "content": "x"}], "/messages/0/role"),
        ([{"content": "x"}], "/messages/0/role"),
        ([{"role": "function", "name": "f", "content": "x"}], "/messages/0/role"),
        ([{"role": "user", "content": ""}], "/messages/0/content"),
        ([USER, {"role": "assistant", "content": None}], "/messages/1/content"),
        ([USER, {"role": "assistant", "content": "", "function_call": {"name": "f"}}],
         "/messages/1/function_call"),
        ([USER, {"role": "tool", "content": "x"}], "/messages/1/tool_call_id"),
        ([{"role": "user", "content": 42}], "/messages/0/content"),
    ],
)
def test_bad_messages(messages: Any, pointer: str) -> None:
    body = req()
    if messages is None:
        del body["messages"]
    else:
        body["messages"] = messages
    assert refused(body).pointer == pointer


def test_empty_message_merged_with_a_full_one_is_fine() -> None:
    out = translate(req(messages=[{"role": "user", "content": ""}, USER]))
    assert out["messages"] == [HI]


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city.", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False},
}}
WEATHER_OUT = {
    "name": "get_weather", "description": "Weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"], "additionalProperties": False},
}


def test_tools() -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    untyped = {"function": {"name": "echo", "parameters": {"properties": {"x": {}}}}}
    assert translate(req(tools=[WEATHER, bare, untyped]))["tools"] == [
        WEATHER_OUT,
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        {"name": "echo", "input_schema": {"type": "object", "properties": {"x": {}}}},
    ]


@pytest.mark.parametrize(
    ("fields", "choice"),
    [
        ({}, None),
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
         {"type": "tool", "name": "get_weather"}),
        ({"parallel_tool_calls": True}, None),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        ({"parallel_tool_calls": False, "tool_choice": "required"},
         {"type": "any", "disable_parallel_tool_use": True}),
        ({"parallel_tool_calls": False,
          "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
         {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}),
        ({"parallel_tool_calls": False, "tool_choice": "none"}, {"type": "none"}),
    ],
)
def test_tool_choice(fields: dict[str, Any], choice: dict[str, Any] | None) -> None:
    out = translate(req(tools=[WEATHER], **fields))
    assert out["tools"] == [WEATHER_OUT]
    assert out.get("tool_choice") == choice


@pytest.mark.parametrize(
    "fields", [{}, {"tool_choice": "none"}, {"parallel_tool_calls": False}, {"tools": []}]
)
def test_no_tools_no_tool_fields(fields: dict[str, Any]) -> None:
    out = translate(req(**fields))
    assert "tools" not in out
    assert "tool_choice" not in out


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"tool_choice": "required"}, "/tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "/tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "allowed_tools"}}, "/tool_choice/type"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function"}}, "/tool_choice/function"),
        ({"tools": [WEATHER], "tool_choice": 3}, "/tool_choice"),
        ({"tools": [WEATHER], "parallel_tool_calls": "no"}, "/parallel_tool_calls"),
        ({"tools": {"a": 1}}, "/tools"),
        ({"tools": [WEATHER, {"type": "custom", "custom": {"name": "x"}}]}, "/tools/1/type"),
        ({"tools": [{"type": "function"}]}, "/tools/0/function"),
        ({"tools": [{"type": "function", "function": {"description": "d"}}]},
         "/tools/0/function/name"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "array"}}}]}, "/tools/0/function/parameters/type"),
        ({"tools": [{"type": "function", "function": {"name": RESPONSE_FORMAT_TOOL}}]},
         "/tools/0/function/name"),
    ],
)
def test_bad_tools(fields: dict[str, Any], pointer: str) -> None:
    assert refused(req(**fields)).pointer == pointer


@pytest.mark.parametrize(
    ("fields", "max_tokens"),
    [
        ({}, DEFAULT_MAX),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200}, 200),
        ({"max_tokens": 100, "max_completion_tokens": 200}, 200),
        ({"max_tokens": None}, DEFAULT_MAX),
    ],
)
def test_max_tokens(fields: dict[str, Any], max_tokens: int) -> None:
    assert translate(req(**fields))["max_tokens"] == max_tokens


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"temperature": 0.3}, {"temperature": 0.3}),
        ({"temperature": 0}, {"temperature": 0}),
        ({"temperature": 1.7}, {"temperature": 1.0}),
        ({"top_p": 0.9}, {"top_p": 0.9}),
        ({"stop": "END"}, {"stop_sequences": ["END"]}),
        ({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}),
        ({"stop": []}, {}),
        ({"stop": None}, {}),
        ({"stream": True}, {"stream": True}),
        ({"stream": False}, {"stream": False}),
        ({"user": "u-1"}, {"metadata": {"user_id": "u-1"}}),
        ({"safety_identifier": "s-1", "user": "u-1"}, {"metadata": {"user_id": "s-1"}}),
        ({"metadata": {"user_id": "m-1", "team": "x"}, "user": "u-1"},
         {"metadata": {"user_id": "m-1"}}),
        ({"metadata": {"team": "x"}}, {}),
        ({"n": 1, "logprobs": False, "top_logprobs": 0}, {}),
        # Sampling and bookkeeping fields Anthropic lacks are dropped.
        ({"presence_penalty": 0.5, "frequency_penalty": 0.2, "seed": 7,
          "logit_bias": {"50256": -100}, "service_tier": "auto", "store": True,
          "reasoning_effort": "low", "verbosity": "low", "prompt_cache_key": "k",
          "stream_options": {"include_usage": True}, "prediction": {"type": "content"},
          "modalities": ["text"], "some_future_field": 1}, {}),
    ],
)
def test_sampling_and_metadata(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    out = translate(req(**fields))
    base = {"model": MODEL, "max_tokens": DEFAULT_MAX, "messages": [HI]}
    assert out == base | expected


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"n": 2}, "/n"),
        ({"n": 0}, "/n"),
        ({"logprobs": True}, "/logprobs"),
        ({"top_logprobs": 3}, "/top_logprobs"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "/audio"),
        ({"modalities": ["text", "audio"]}, "/modalities"),
        ({"web_search_options": {}}, "/web_search_options"),
        ({"functions": [{"name": "f"}]}, "/functions"),
        ({"function_call": "auto"}, "/function_call"),
        ({"max_tokens": 0}, "/max_tokens"),
        ({"max_completion_tokens": True}, "/max_completion_tokens"),
        ({"max_tokens": "100"}, "/max_tokens"),
        ({"temperature": "hot"}, "/temperature"),
        ({"top_p": True}, "/top_p"),
        ({"stop": [1]}, "/stop/0"),
        ({"stop": 5}, "/stop"),
        ({"stream": "yes"}, "/stream"),
        ({"metadata": {"user_id": 5}}, "/metadata/user_id"),
        ({"metadata": "m"}, "/metadata"),
        ({"user": 5}, "/user"),
    ],
)
def test_refused_fields(fields: dict[str, Any], pointer: str) -> None:
    assert refused(req(**fields)).pointer == pointer


def test_body_must_be_an_object() -> None:
    with pytest.raises(TranslationError) as info:
        to_anthropic([], MODEL, 1)  # type: ignore[arg-type]
    assert info.value.pointer == ""


SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}},
          "required": ["answer"], "additionalProperties": False}


def _format_tools(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in out.get("tools", []) if t["name"] == RESPONSE_FORMAT_TOOL]


JSON_SCHEMA = {"type": "json_schema",
               "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True,
                               "description": "The final answer."}}


@pytest.mark.parametrize(
    ("fields", "tools", "choice"),
    [
        ({"response_format": {"type": "text"}}, [], None),
        ({"response_format": {"type": "json_object"}}, [RESPONSE_FORMAT_TOOL],
         {"type": "tool", "name": RESPONSE_FORMAT_TOOL}),
        ({"response_format": JSON_SCHEMA}, [RESPONSE_FORMAT_TOOL],
         {"type": "tool", "name": RESPONSE_FORMAT_TOOL}),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER]},
         ["get_weather", RESPONSE_FORMAT_TOOL], {"type": "any"}),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER], "tool_choice": "auto",
          "parallel_tool_calls": False},
         ["get_weather", RESPONSE_FORMAT_TOOL], {"type": "any", "disable_parallel_tool_use": True}),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER], "tool_choice": "none"},
         ["get_weather", RESPONSE_FORMAT_TOOL], {"type": "tool", "name": RESPONSE_FORMAT_TOOL}),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER], "tool_choice": "required"},
         ["get_weather"], {"type": "any"}),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER],
          "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
         ["get_weather"], {"type": "tool", "name": "get_weather"}),
    ],
)
def test_response_format_becomes_a_forced_tool(
    fields: dict[str, Any], tools: list[str], choice: dict[str, Any] | None
) -> None:
    out = translate(req(**fields))
    assert [t["name"] for t in out.get("tools", [])] == tools
    assert out.get("tool_choice") == choice


def test_response_format_tool_schema_and_description() -> None:
    [tool] = _format_tools(translate(req(response_format=JSON_SCHEMA)))
    assert tool["input_schema"] == SCHEMA
    assert "The final answer." in tool["description"]
    [tool] = _format_tools(translate(req(response_format={"type": "json_object"})))
    assert tool["input_schema"] == {"type": "object"}
    no_schema = {"type": "json_schema", "json_schema": {"name": "x"}}
    [tool] = _format_tools(translate(req(response_format=no_schema)))
    assert tool["input_schema"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("response_format", "pointer"),
    [
        ({"type": "yaml"}, "/response_format/type"),
        ("json", "/response_format"),
        ({"type": "json_schema"}, "/response_format/json_schema"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}},
         "/response_format/json_schema/schema/type"),
    ],
)
def test_bad_response_format(response_format: Any, pointer: str) -> None:
    assert refused(req(response_format=response_format)).pointer == pointer


# ---------------------------------------------------------------------------------------------
# responses

USAGE = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100,
         "cache_creation_input_tokens": 20}
OPENAI_USAGE = {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                "prompt_tokens_details": {"cached_tokens": 100}}


def message(content: list[dict[str, Any]], stop_reason: str | None = "end_turn",
            **extra: Any) -> dict[str, Any]:
    out = {"id": "msg_01", "type": "message", "role": "assistant", "model": MODEL,
           "content": content, "stop_reason": stop_reason, "stop_sequence": None}
    out.update(extra)
    return out


def test_text_response() -> None:
    resp = message([text("Hello"), text(", world")], usage=USAGE)
    assert from_anthropic(resp, "gpt-4o", 1700000000) == {
        "id": "msg_01",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello, world", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": OPENAI_USAGE,
    }


def test_tool_use_response() -> None:
    resp = message([
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        text("Let me check."),
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
         "input": {"city": "Zürich"}},
        {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
    ], "tool_use")
    choice = from_anthropic(resp, "m", 0)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        {"id": "toolu_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "city": "Zürich"}


def test_only_tool_use_gives_null_content() -> None:
    resp = message([{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
                   "tool_use")
    msg = from_anthropic(resp, "m", 0)["choices"][0]["message"]
    assert msg["content"] is None
    assert len(msg["tool_calls"]) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([], ""),
        ([{"type": "thinking", "thinking": "x", "signature": "s"}], ""),
        ([{"type": "redacted_thinking", "data": "xx"}, text("a")], "a"),
        ([{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}, text("b")],
         "b"),
    ],
)
def test_ignored_blocks(content: list[dict[str, Any]], expected: str) -> None:
    msg = from_anthropic(message(content), "m", 0)["choices"][0]["message"]
    assert msg["content"] == expected
    assert "tool_calls" not in msg


def test_response_format_tool_comes_back_as_content() -> None:
    resp = message([{"type": "tool_use", "id": "t", "name": RESPONSE_FORMAT_TOOL,
                     "input": {"answer": 42}}], "tool_use")
    choice = from_anthropic(resp, "m", 0)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert json.loads(choice["message"]["content"]) == {"answer": 42}
    assert "tool_calls" not in choice["message"]


def test_response_format_tool_beside_a_real_tool_call() -> None:
    resp = message([
        {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        {"type": "tool_use", "id": "t2", "name": RESPONSE_FORMAT_TOOL, "input": {"a": 1}},
    ], "tool_use")
    choice = from_anthropic(resp, "m", 0)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert json.loads(choice["message"]["content"]) == {"a": 1}
    assert [c["id"] for c in choice["message"]["tool_calls"]] == ["t1"]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("some_new_reason", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish: str) -> None:
    content = [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]
    resp = message(content, stop_reason)
    assert from_anthropic(resp, "m", 0)["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (USAGE, OPENAI_USAGE),
        # no cache fields: the cached count is unknown (left out), not 0 (issue 11 finding 17)
        ({"input_tokens": 7, "output_tokens": 3},
         {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}),
        ({"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": None,
          "cache_creation_input_tokens": 4, "service_tier": "standard"},
         {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}),
        ({"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0},
         {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
          "prompt_tokens_details": {"cached_tokens": 0}}),
    ],
)
def test_usage(usage: dict[str, Any], expected: dict[str, Any]) -> None:
    assert from_anthropic(message([text("x")], usage=usage), "m", 0)["usage"] == expected


@pytest.mark.parametrize("extra", [{}, {"usage": None}])
def test_missing_usage_is_absent_not_zero(extra: dict[str, Any]) -> None:
    assert "usage" not in from_anthropic(message([text("x")], **extra), "m", 0)


@pytest.mark.parametrize(
    ("resp", "pointer"),
    [
        ([], ""),
        ("not an object", ""),
        ({"content": []}, "/id"),
        ({"id": 5, "content": []}, "/id"),
        ({"id": "m"}, "/content"),
        ({"id": "m", "content": "text"}, "/content"),
        ({"id": "m", "content": {"type": "text"}}, "/content"),
        ({"id": "m", "content": [text("a"), "b"]}, "/content/1"),
        ({"id": "m", "content": [{"text": "a"}]}, "/content/0/type"),
        ({"id": "m", "content": [text("a"), {"type": "text", "text": None}]}, "/content/1/text"),
        ({"id": "m", "content": [{"type": "tool_use", "name": "f", "input": {}}]},
         "/content/0/id"),
        ({"id": "m", "content": [{"type": "tool_use", "id": "t", "input": {}}]},
         "/content/0/name"),
        ({"id": "m", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]},
         "/content/0/input"),
        ({"id": "m", "content": [], "stop_reason": 3}, "/stop_reason"),
        ({"id": "m", "content": [], "usage": "lots"}, "/usage"),
        ({"id": "m", "content": [], "usage": {"output_tokens": 1}}, "/usage/input_tokens"),
        ({"id": "m", "content": [], "usage": {"input_tokens": 1}}, "/usage/output_tokens"),
        ({"id": "m", "content": [], "usage": {"input_tokens": -1, "output_tokens": 1}},
         "/usage/input_tokens"),
        ({"id": "m", "content": [], "usage": {"input_tokens": 1, "output_tokens": 1,
                                              "cache_read_input_tokens": "2"}},
         "/usage/cache_read_input_tokens"),
    ],
)
def test_malformed_responses(resp: Any, pointer: str) -> None:
    with pytest.raises(TranslationError) as info:
        from_anthropic(resp, "m", 0)
    assert info.value.pointer == pointer


def test_error_shaped_body_is_malformed() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(TranslationError) as info:
        from_anthropic(body, "m", 0)
    assert info.value.pointer == "/id"


# ---------------------------------------------------------------------------------------------
# streams

# Modelled on the "streaming request with tool use" example in Anthropic's streaming docs: a text
# block, a ping, then a tool_use block whose input arrives as input_json_delta pieces (the first
# one empty), a message_delta with the stop reason and cumulative output usage, message_stop.
DOCS_STREAM = """\
event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", let's check the weather for San Francisco, CA:"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \\"San Francisc"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"o, CA\\", \\"unit\\": \\"fah"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"renheit\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""  # noqa: E501

# A captured Anthropic stream (the @ai-sdk/anthropic test fixture anthropic-json-tool.1): a lone
# tool_use block, a ping mid-block, and a message_delta whose usage repeats the input counts.
CAPTURED_EVENTS: list[dict[str, Any]] = [
    {"type": "message_start", "message": {
        "model": "claude-haiku-4-5-20251001", "id": "msg_01K2JbSUMYhez5RHoK9ZCj9U",
        "type": "message", "role": "assistant", "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {
            "input_tokens": 849, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 10, "service_tier": "standard"}}},
    {"type": "content_block_start", "index": 0, "content_block": {
        "type": "tool_use", "id": "toolu_01KFbKqPYSuAKujiL6mTfzYA", "name": "json", "input": {}}},
    {"type": "content_block_delta", "index": 0,
     "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {
        "type": "input_json_delta", "partial_json":
            '{"elements": [{"location": "San Francisco", "temperature": 58, '
            '"condition": "sunny"}]'}},
    {"type": "content_block_delta", "index": 0,
     "delta": {"type": "input_json_delta", "partial_json": "}"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"input_tokens": 849, "cache_creation_input_tokens": 0,
               "cache_read_input_tokens": 0, "output_tokens": 47}},
    {"type": "message_stop"},
]


def run_stream(wire: str, include_usage: bool = True) -> tuple[
    list[dict[str, Any]], AnthropicStreamTranslator
]:
    translator = AnthropicStreamTranslator("gpt-4o", 1700000000, include_usage)
    chunks: list[dict[str, Any]] = []
    for event, data in SSEParser().feed(wire):
        chunks += translator.feed(event, json.loads(data))
    return chunks, translator


def feed_all(events: list[dict[str, Any]], include_usage: bool = True) -> tuple[
    list[dict[str, Any]], AnthropicStreamTranslator
]:
    translator = AnthropicStreamTranslator("gpt-4o", 1700000000, include_usage)
    chunks = [c for e in events for c in translator.feed(e["type"], e)]
    return chunks, translator


def deltas(chunks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str | None]]:
    return [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"])
            for c in chunks if c["choices"]]


def accumulate(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Rebuild a `chat.completion` message from chunks, as an OpenAI client does."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    usage = None
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        if chunk.get("usage") is not None:
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if delta.get("content"):
                content.append(delta["content"])
            for tc in delta.get("tool_calls", []):
                if tc["index"] not in calls:
                    calls[tc["index"]] = {"id": tc["id"], "type": tc["type"], "function": {
                        "name": tc["function"]["name"], "arguments": ""}}
                calls[tc["index"]]["function"]["arguments"] += tc["function"]["arguments"]
            if choice["finish_reason"] is not None:
                finish = choice["finish_reason"]
    return {"content": "".join(content) or None,
            "tool_calls": [calls[i] for i in sorted(calls)], "finish_reason": finish,
            "usage": usage}


def test_docs_stream_chunk_by_chunk() -> None:
    chunks, translator = run_stream(DOCS_STREAM)
    call_start = {"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                  "function": {"name": "get_weather", "arguments": ""}}
    assert deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Okay"}, None),
        ({"content": ", let's check the weather for San Francisco, CA:"}, None),
        ({"tool_calls": [call_start]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": ' "San Francisc'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 'o, CA", "unit": "fah'}}]},
         None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 'renheit"}'}}]}, None),
        ({}, "tool_calls"),
    ]
    for chunk in chunks:
        assert chunk["id"] == "msg_014p7gG3wDgGV9EUtLvnow3U"
        assert chunk["model"] == "gpt-4o"
        assert chunk["created"] == 1700000000
        assert chunk["object"] == "chat.completion.chunk"
    assert all(c["usage"] is None for c in chunks[:-1])
    usage = {"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561}
    assert chunks[-1] == {"id": "msg_014p7gG3wDgGV9EUtLvnow3U",
                          "object": "chat.completion.chunk", "created": 1700000000,
                          "model": "gpt-4o", "choices": [], "usage": usage}
    assert translator.usage() == usage
    assert translator.finished
    assert translator.id == "msg_014p7gG3wDgGV9EUtLvnow3U"
    rebuilt = accumulate(chunks)
    assert json.loads(rebuilt["tool_calls"][0]["function"]["arguments"]) == {
        "location": "San Francisco, CA", "unit": "fahrenheit"}


def test_docs_stream_agrees_with_the_non_streaming_translation() -> None:
    final = message([
        text("Okay, let's check the weather for San Francisco, CA:"),
        {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
         "input": {"location": "San Francisco, CA", "unit": "fahrenheit"}},
    ], "tool_use", usage={"input_tokens": 472, "output_tokens": 89})
    whole = from_anthropic(final, "gpt-4o", 0)
    rebuilt = accumulate(run_stream(DOCS_STREAM)[0])
    assert rebuilt["content"] == whole["choices"][0]["message"]["content"]
    assert rebuilt["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert rebuilt["usage"] == whole["usage"]
    [streamed] = rebuilt["tool_calls"]
    [unary] = whole["choices"][0]["message"]["tool_calls"]
    assert json.loads(streamed["function"]["arguments"]) == json.loads(
        unary["function"]["arguments"])
    assert {**streamed, "function": None} == {**unary, "function": None}


def test_docs_stream_without_include_usage() -> None:
    chunks, translator = run_stream(DOCS_STREAM, include_usage=False)
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert translator.usage() is not None


def test_docs_stream_over_crlf_and_every_split() -> None:
    expected, _ = run_stream(DOCS_STREAM)
    wire = DOCS_STREAM.replace("\n", "\r\n")
    for cut in range(0, len(wire) + 1, 7):
        translator = AnthropicStreamTranslator("gpt-4o", 1700000000, True)
        parser = SSEParser()
        chunks = [c for piece in (wire[:cut], wire[cut:]) for event, data in parser.feed(piece)
                  for c in translator.feed(event, json.loads(data))]
        assert chunks == expected, cut


def test_captured_stream() -> None:
    chunks, translator = feed_all(CAPTURED_EVENTS)
    rebuilt = accumulate(chunks)
    assert rebuilt["content"] is None
    assert rebuilt["finish_reason"] == "tool_calls"
    [tool_call] = rebuilt["tool_calls"]
    assert tool_call["id"] == "toolu_01KFbKqPYSuAKujiL6mTfzYA"
    assert json.loads(tool_call["function"]["arguments"]) == {"elements": [
        {"location": "San Francisco", "temperature": 58, "condition": "sunny"}]}
    assert rebuilt["usage"] == translator.usage() == {
        "prompt_tokens": 849, "completion_tokens": 47, "total_tokens": 896,
        "prompt_tokens_details": {"cached_tokens": 0}}


def start(usage: dict[str, Any] | None = None, msg_id: str = "msg_1") -> dict[str, Any]:
    message_: dict[str, Any] = {"id": msg_id, "type": "message", "role": "assistant",
                                "content": [], "model": MODEL, "stop_reason": None}
    if usage is not None:
        message_["usage"] = usage
    return {"type": "message_start", "message": message_}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def stop(stop_reason: str | None = "end_turn", usage: dict[str, Any] | None = None) -> list[
    dict[str, Any]
]:
    delta: dict[str, Any] = {"type": "message_delta",
                             "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
    if usage is not None:
        delta["usage"] = usage
    return [delta, {"type": "message_stop"}]


def test_stream_without_usage_sends_no_usage_chunk() -> None:
    events = [start(), block_start(0, text("")),
              block_delta(0, {"type": "text_delta", "text": "hi"}), *stop()]
    chunks, translator = feed_all(events)
    assert translator.usage() is None
    assert all(c["choices"] for c in chunks)
    assert deltas(chunks)[-1] == ({}, "stop")


def test_stream_with_only_output_usage_reports_none() -> None:
    chunks, translator = feed_all([start(), *stop(usage={"output_tokens": 3})])
    assert translator.usage() is None
    assert len(chunks) == 2


def test_stream_usage_with_cache_counts() -> None:
    events = [start({"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 1000,
                     "cache_creation_input_tokens": 50}), *stop(usage={"output_tokens": 12})]
    chunks, _ = feed_all(events)
    assert chunks[-1]["usage"] == {"prompt_tokens": 1055, "completion_tokens": 12,
                                   "total_tokens": 1067,
                                   "prompt_tokens_details": {"cached_tokens": 1000}}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
     ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop"),
     (None, "stop")],
)
def test_stream_stop_reasons(stop_reason: str | None, finish: str) -> None:
    events = [start(), block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
              *stop(stop_reason)]
    assert deltas(feed_all(events)[0])[-1] == ({}, finish)


def test_stream_tool_indexes_count_tool_blocks_only() -> None:
    events = [
        start({"input_tokens": 1, "output_tokens": 1}),
        block_start(0, {"type": "thinking", "thinking": ""}),
        block_delta(0, {"type": "thinking_delta", "thinking": "Let me think"}),
        block_delta(0, {"type": "signature_delta", "signature": "EqQB"}),
        {"type": "content_block_stop", "index": 0},
        block_start(1, text("")),
        block_delta(1, {"type": "text_delta", "text": "Two calls."}),
        block_start(2, {"type": "tool_use", "id": "a", "name": "f", "input": {}}),
        block_start(3, {"type": "tool_use", "id": "b", "name": "g", "input": {}}),
        block_delta(3, {"type": "input_json_delta", "partial_json": '{"y":'}),
        block_delta(2, {"type": "input_json_delta", "partial_json": '{"x": 1}'}),
        block_delta(3, {"type": "input_json_delta", "partial_json": " 2}"}),
        *stop("tool_use"),
    ]
    chunks, _ = feed_all(events)
    rebuilt = accumulate(chunks)
    assert rebuilt["content"] == "Two calls."
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in rebuilt["tool_calls"]] == [("a", "f", {"x": 1}), ("b", "g", {"y": 2})]
    assert rebuilt["finish_reason"] == "tool_calls"


def test_stream_response_format_tool_streams_content() -> None:
    events = [
        start({"input_tokens": 1, "output_tokens": 1}),
        block_start(0, {"type": "tool_use", "id": "t", "name": RESPONSE_FORMAT_TOOL,
                        "input": {}}),
        block_delta(0, {"type": "input_json_delta", "partial_json": '{"answer"'}),
        block_delta(0, {"type": "input_json_delta", "partial_json": ": 42}"}),
        *stop("tool_use"),
    ]
    chunks, _ = feed_all(events)
    assert deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": '{"answer"'}, None),
        ({"content": ": 42}"}, None),
        ({}, "stop"),
    ]


def test_stream_text_in_block_start_and_empty_deltas() -> None:
    events = [start(), block_start(0, text("Hi")),
              block_delta(0, {"type": "text_delta", "text": ""}),
              block_delta(0, {"type": "citations_delta", "citation": {}}),
              block_start(1, {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}),
              *stop("tool_use")]
    assert deltas(feed_all(events)[0])[1:] == [
        ({"content": "Hi"}, None),
        ({"tool_calls": [{"index": 0, "id": "t", "type": "function",
                          "function": {"name": "f", "arguments": '{"a": 1}'}}]}, None),
        ({}, "tool_calls"),
    ]


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("ping", {"type": "ping"}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("some_future_event", {"type": "some_future_event", "x": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
    ],
)
def test_events_that_produce_nothing(event: str, data: dict[str, Any]) -> None:
    translator = AnthropicStreamTranslator("m", 0, True)
    translator.feed("message_start", start())
    translator.feed("content_block_start", block_start(0, text("")))
    assert translator.feed(event, data) == []


def test_event_name_falls_back_to_data_type() -> None:
    translator = AnthropicStreamTranslator("m", 0, False)
    assert translator.feed("", start())[0]["id"] == "msg_1"
    assert translator.feed("message", block_start(0, text("x")))[0]["choices"][0]["delta"] == {
        "content": "x"}


def test_message_stop_twice_emits_once() -> None:
    translator = AnthropicStreamTranslator("m", 0, True)
    translator.feed("message_start", start())
    assert len(translator.feed("message_stop", {"type": "message_stop"})) == 1
    assert translator.feed("message_stop", {"type": "message_stop"}) == []


def test_error_event_raises_stream_error() -> None:
    translator = AnthropicStreamTranslator("m", 0, True)
    translator.feed("message_start", start())
    with pytest.raises(StreamError) as info:
        translator.feed("error", {"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded"}})
    assert (info.value.type, info.value.message) == ("overloaded_error", "Overloaded")
    assert str(info.value) == "overloaded_error: Overloaded"
    with pytest.raises(StreamError) as info:
        AnthropicStreamTranslator("m", 0, True).feed("error", {"type": "error"})
    assert (info.value.type, info.value.message) == ("error", "")


def test_error_event_via_sse() -> None:
    wire = ('event: error\ndata: {"type": "error", "error": {"type": "api_error", '
            '"message": "Internal server error"}}\n\n')
    with pytest.raises(StreamError) as info:
        run_stream(wire)
    assert info.value.type == "api_error"


@pytest.mark.parametrize(
    ("events", "pointer"),
    [
        ([block_start(0, text(""))], "/type"),
        ([{"type": "message_stop"}], "/type"),
        ([{"type": "message_start"}], "/message"),
        ([{"type": "message_start", "message": {"content": []}}], "/message/id"),
        ([start(), start()], "/type"),
        ([start({"input_tokens": "many"})], "/message/usage/input_tokens"),
        ([start(), block_delta(0, {"type": "text_delta", "text": "x"})], "/index"),
        ([start(), block_start(0, text("")), block_start(0, text(""))], "/index"),
        ([start(), {"type": "content_block_start", "content_block": text("")}], "/index"),
        ([start(), {"type": "content_block_start", "index": 0}], "/content_block"),
        ([start(), block_start(0, {"text": ""})], "/content_block/type"),
        ([start(), block_start(0, {"type": "tool_use", "name": "f", "input": {}})],
         "/content_block/id"),
        ([start(), block_start(0, {"type": "tool_use", "id": "t", "input": {}})],
         "/content_block/name"),
        ([start(), block_start(0, text("")), {"type": "content_block_delta", "index": 0}],
         "/delta"),
        ([start(), block_start(0, text("")), block_delta(0, {"text": "x"})], "/delta/type"),
        ([start(), block_start(0, text("")), block_delta(0, {"type": "text_delta"})],
         "/delta/text"),
        ([start(), block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
          block_delta(0, {"type": "text_delta", "text": "x"})], "/delta/type"),
        ([start(), block_start(0, text("")),
          block_delta(0, {"type": "input_json_delta", "partial_json": "{}"})], "/delta/type"),
        ([start(), block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
          block_delta(0, {"type": "input_json_delta", "partial_json": None})],
         "/delta/partial_json"),
        ([start(), {"type": "message_delta", "delta": {"stop_reason": 1}}],
         "/delta/stop_reason"),
        ([start(), {"type": "message_delta", "delta": "x"}], "/delta"),
        ([start(), {"type": "message_delta", "delta": {}, "usage": {"output_tokens": -2}}],
         "/usage/output_tokens"),
    ],
)
def test_malformed_stream_events(events: list[dict[str, Any]], pointer: str) -> None:
    translator = AnthropicStreamTranslator("m", 0, True)
    with pytest.raises(TranslationError) as info:
        for event in events:
            translator.feed(event.get("type", ""), event)
    assert info.value.pointer == pointer


# ---------------------------------------------------------------------------------------------
# properties


def _sse_events_for(final: dict[str, Any], splits: list[int]) -> list[dict[str, Any]]:
    """The event sequence Anthropic would stream for the Message `final`."""
    usage = final.get("usage")
    opening = {k: v for k, v in final.items() if k not in ("content", "usage", "stop_reason")}
    if usage is not None:
        opening["usage"] = {**usage, "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {
        **opening, "content": [], "stop_reason": None}}]
    for i, block in enumerate(final["content"]):
        def pieces(s: str, i: int = i) -> list[str]:
            cut = splits[i % len(splits)] % (len(s) + 1) if splits else 0
            return [s[:cut], s[cut:]]
        if block["type"] == "text":
            events.append(block_start(i, text("")))
            events += [block_delta(i, {"type": "text_delta", "text": p})
                       for p in pieces(block["text"])]
        elif block["type"] == "tool_use":
            events.append(block_start(i, {**block, "input": {}}))
            events += [block_delta(i, {"type": "input_json_delta", "partial_json": p})
                       for p in pieces(json.dumps(block["input"], ensure_ascii=False))]
        else:
            events.append(block_start(i, {"type": "thinking", "thinking": ""}))
            events.append(block_delta(i, {"type": "thinking_delta", "thinking": block["thinking"]}))
        events.append({"type": "content_block_stop", "index": i})
        if splits and splits[0] % 3 == 0:
            events.append({"type": "ping"})
    delta: dict[str, Any] = {"type": "message_delta",
                             "delta": {"stop_reason": final["stop_reason"], "stop_sequence": None}}
    if usage is not None:
        delta["usage"] = {"output_tokens": usage["output_tokens"]}
    return [*events, delta, {"type": "message_stop"}]


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6,
)
_blocks = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=20)),
    st.builds(lambda n, i, inp: {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": inp},
              st.sampled_from(["get_weather", "search", RESPONSE_FORMAT_TOOL]),
              st.integers(0, 10**6),
              st.dictionaries(st.text(max_size=5), _json_values, max_size=3)),
    st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "s"}, st.text(max_size=8)),
)
_usages = st.none() | st.fixed_dictionaries({
    "input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(1, 10**5),
    "cache_read_input_tokens": st.integers(0, 10**6),
    "cache_creation_input_tokens": st.integers(0, 10**6)})


@settings(max_examples=120, deadline=None)
@given(
    content=st.lists(_blocks, max_size=5),
    stop_reason=st.sampled_from(["end_turn", "max_tokens", "tool_use", "stop_sequence",
                                 "refusal", "pause_turn"]),
    usage=_usages,
    splits=st.lists(st.integers(0, 100), max_size=4),
)
def test_streaming_agrees_with_non_streaming(
    content: list[dict[str, Any]], stop_reason: str, usage: dict[str, int] | None,
    splits: list[int],
) -> None:
    final = message(content, stop_reason)
    if usage is not None:
        final["usage"] = usage
    whole = from_anthropic(final, "gpt-4o", 0)
    chunks, translator = feed_all(_sse_events_for(final, splits))
    rebuilt = accumulate(chunks)
    choice = whole["choices"][0]
    assert rebuilt["finish_reason"] == choice["finish_reason"]
    assert rebuilt["usage"] == whole.get("usage") == translator.usage()
    calls = choice["message"].get("tool_calls", [])
    assert [(c["id"], c["function"]["name"]) for c in rebuilt["tool_calls"]] == [
        (c["id"], c["function"]["name"]) for c in calls]
    for streamed, unary in zip(rebuilt["tool_calls"], calls, strict=True):
        assert json.loads(streamed["function"]["arguments"]) == json.loads(
            unary["function"]["arguments"])
    assert rebuilt["content"] == (choice["message"]["content"] or None)


_roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "assistant_call"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_roles, st.text(min_size=1, max_size=6)), max_size=12))
def test_translated_conversations_alternate_and_keep_every_text(
    turns: list[tuple[str, str]],
) -> None:
    messages: list[dict[str, Any]] = []
    for n, (role, body) in enumerate(turns):
        if role == "tool":
            messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": body})
        elif role == "assistant_call":
            messages.append({"role": "assistant", "content": body,
                             "tool_calls": [call(f"c{n}", "f", json.dumps({"t": body}))]})
        else:
            messages.append({"role": role, "content": body})
    conversation = [m for m in messages if m["role"] not in ("system", "developer")]
    if not conversation:
        with pytest.raises(TranslationError):
            translate(req(messages=messages))
        return
    out = translate(req(messages=messages))
    roles = [m["role"] for m in out["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))
    system = [m["content"] for m in messages if m["role"] in ("system", "developer")]
    assert out.get("system") == ("\n\n".join(system) or None)
    blocks = [b for m in out["messages"] for b in m["content"]]
    # Every text, tool call and tool result survives (tool results may move to a turn's front).
    assert sorted(b.get("text") or b.get("content") or json.dumps(b.get("input")) for b in blocks
                  ) == sorted(
        [m["content"] for m in conversation]
        + [json.dumps({"t": m["content"]}) for m in conversation if "tool_calls" in m])
    for m in out["messages"]:
        kinds = [b["type"] for b in m["content"]]
        if m["role"] == "user":
            assert kinds == sorted(kinds, key=lambda k: k != "tool_result")
            assert "tool_use" not in kinds
        else:
            assert "tool_result" not in kinds
