"""OpenAI chat completions ⇄ Bedrock Converse (`router.dispatch.providers.bedrock_translate`):
request mapping, response mapping, stream translation, exception frames, and the errors with
their pointers. Every translated response and chunk is also checked against the `openai` SDK's
own types."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from router.dispatch.providers.bedrock_translate import (
    MAX_EXCEPTION_MESSAGE_CHARS,
    RESPONSE_FORMAT_TOOL,
    ConverseStreamTranslator,
    StreamError,
    TranslationError,
    from_converse,
    stream_exception,
    to_converse,
)

DEFAULT_MAX = 4096
USER = {"role": "user", "content": "hi"}
HI = {"role": "user", "content": [{"text": "hi"}]}


def req(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-4o", "messages": [USER]}
    body.update(fields)
    return body


def translate(body: Mapping[str, Any]) -> dict[str, Any]:
    return to_converse(body, DEFAULT_MAX)


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def refused(body: Mapping[str, Any]) -> TranslationError:
    with pytest.raises(TranslationError) as info:
        translate(body)
    return info.value


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_use(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": call_id, "name": name, "input": args}}


def tool_result(call_id: str, *texts: str) -> dict[str, Any]:
    return {"toolResult": {"toolUseId": call_id, "content": [{"text": t} for t in texts]}}


# ---------------------------------------------------------------------------------------------
# requests


def test_minimal_request() -> None:
    assert translate(req()) == {"messages": [HI], "inferenceConfig": {"maxTokens": DEFAULT_MAX}}
    assert to_converse(req()) == {"messages": [HI]}  # no default, no limit: the model's maximum


def test_request_is_not_mutated() -> None:
    body = req(
        messages=[
            {"role": "system", "content": "s"},
            USER,
            {"role": "assistant", "content": None, "tool_calls": [call("c", "f", "{}")]},
            {"role": "tool", "tool_call_id": "c", "content": "r"},
        ],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        response_format={"type": "json_object"},
    )
    before = copy.deepcopy(body)
    out = translate(body)
    assert body == before
    out["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["x"] = 1
    assert body == before  # the output shares no schema with the input


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
    assert out.get("system") == (None if system is None else [{"text": system}])
    assert out["messages"] == [HI]


def test_system_with_image_part_is_refused() -> None:
    error = refused(req(messages=[
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:x"}}]},
        USER,
    ]))
    assert error.pointer == "/messages/0/content/0/type"


@pytest.mark.parametrize(
    ("url", "image"),
    [
        ("data:image/png;base64,iVBORw0KGgo=",
         {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}),
        ("data:IMAGE/JPEG;base64,/9j/4AAQ", {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}),
        ("data:image/webp;charset=binary;base64,UklGRg==",
         {"format": "webp", "source": {"bytes": "UklGRg=="}}),
        ("data:image/gif;base64,R0lGOD", {"format": "gif", "source": {"bytes": "R0lGOD"}}),
    ],
)
def test_image_parts_from_data_urls(url: str, image: dict[str, Any]) -> None:
    message = {"role": "user", "content": [
        text("what is this?"), {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]}
    assert translate(req(messages=[message]))["messages"] == [
        {"role": "user", "content": [{"text": "what is this?"}, {"image": image}]}]


def test_image_url_as_bare_data_string() -> None:
    message = {"role": "user", "content": [
        {"type": "image_url", "image_url": "data:image/png;base64,AAAA"}]}
    assert translate(req(messages=[message]))["messages"][0]["content"] == [
        {"image": {"format": "png", "source": {"bytes": "AAAA"}}}]


@pytest.mark.parametrize(
    ("part", "pointer"),
    [
        ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
         "/messages/0/content/0/image_url/url"),
        ({"type": "image_url", "image_url": {"url": "http://example.com/a.png?x=1"}},
         "/messages/0/content/0/image_url/url"),
        ({"type": "image_url", "image_url": "https://example.com/cat.png"},
         "/messages/0/content/0/image_url"),
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


def test_http_image_refusal_says_why() -> None:
    error = refused(req(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]))
    assert "data url" in error.message


def test_cache_control_becomes_a_cache_point() -> None:
    message = {"role": "user", "content": [
        {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}},
        {"type": "image_url", "image_url": "data:image/png;base64,AAAA",
         "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "", "cache_control": {"type": "ephemeral"}},  # dropped whole
        text("question"),
    ]}
    point = {"cachePoint": {"type": "default"}}
    assert translate(req(messages=[message]))["messages"][0]["content"] == [
        {"text": "long context"}, point,
        {"image": {"format": "png", "source": {"bytes": "AAAA"}}}, point,
        {"text": "question"},
    ]


def test_image_in_assistant_content_is_refused() -> None:
    error = refused(req(messages=[USER, {"role": "assistant", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]))
    assert error.pointer == "/messages/1/content/0/type"


def test_assistant_refusal_part_becomes_text() -> None:
    out = translate(req(messages=[USER, {"role": "assistant", "content": [
        {"type": "refusal", "refusal": "I can't"}]}, USER]))
    assert out["messages"][1] == {"role": "assistant", "content": [{"text": "I can't"}]}


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city.", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False},
}}
WEATHER_OUT = {"toolSpec": {
    "name": "get_weather", "description": "Weather for a city.",
    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}},
                             "required": ["city"], "additionalProperties": False}},
}}


def test_tool_round_trip_request() -> None:
    messages = [
        {"role": "system", "content": "use tools"},
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            call("tooluse_1", "get_weather", '{"city": "Paris"}'),
            call("tooluse_2", "get_weather", '{"city": "Rome", "unit": "c"}'),
        ]},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "tooluse_2", "content": [text("21"), text("C")]},
        {"role": "user", "content": "thanks, and tomorrow?"},
        {"role": "assistant", "content": None, "tool_calls": [
            call("tooluse_3", "get_weather", "")]},
        {"role": "tool", "tool_call_id": "tooluse_3", "content": ""},
    ]
    assert translate(req(messages=messages, tools=[WEATHER])) == {
        "system": [{"text": "use tools"}],
        "messages": [
            {"role": "user", "content": [{"text": "weather in Paris and Rome?"}]},
            {"role": "assistant", "content": [
                {"text": "Checking."},
                tool_use("tooluse_1", "get_weather", {"city": "Paris"}),
                tool_use("tooluse_2", "get_weather", {"city": "Rome", "unit": "c"}),
            ]},
            {"role": "user", "content": [
                tool_result("tooluse_1", "18C"),
                tool_result("tooluse_2", "21", "C"),
                {"text": "thanks, and tomorrow?"},
            ]},
            {"role": "assistant", "content": [tool_use("tooluse_3", "get_weather", {})]},
            {"role": "user", "content": [tool_result("tooluse_3")]},
        ],
        "inferenceConfig": {"maxTokens": DEFAULT_MAX},
        "toolConfig": {"tools": [WEATHER_OUT]},
    }


def test_tool_results_open_a_merged_user_turn() -> None:
    messages = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call("t1", "f", "{}")]},
        {"role": "user", "content": "a note before the result"},
        {"role": "tool", "tool_call_id": "t1", "content": "done"},
    ]
    out = translate(req(messages=messages, tools=[WEATHER]))
    assert out["messages"][2] == {"role": "user", "content": [
        tool_result("t1", "done"), {"text": "a note before the result"}]}


def test_cache_control_in_a_tool_result_is_dropped() -> None:
    messages = [USER, {"role": "assistant", "tool_calls": [call("t", "f", "{}")]},
                {"role": "tool", "tool_call_id": "t", "content": [
                    {"type": "text", "text": "r", "cache_control": {"type": "ephemeral"}}]}]
    out = translate(req(messages=messages, tools=[WEATHER]))
    assert out["messages"][2] == {"role": "user", "content": [tool_result("t", "r")]}


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
    assert out["system"] == [{"text": "s"}]
    assert out["messages"] == [
        {"role": "user", "content": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
        {"role": "assistant", "content": [{"text": "d"}, {"text": "e"}]},
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
    out = translate(req(messages=[USER, assistant], tools=[WEATHER]))
    assert out["messages"][1]["content"][0]["toolUse"]["input"] == expected


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
    error = refused(req(messages=messages, tools=[WEATHER]))
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
    body = req(tools=[WEATHER])
    if messages is None:
        del body["messages"]
    else:
        body["messages"] = messages
    assert refused(body).pointer == pointer


def test_empty_message_merged_with_a_full_one_is_fine() -> None:
    out = translate(req(messages=[{"role": "user", "content": ""}, USER]))
    assert out["messages"] == [HI]


def test_tools() -> None:
    bare = {"type": "function", "function": {"name": "now", "description": ""}}
    untyped = {"function": {"name": "echo", "parameters": {"properties": {"x": {}}}}}
    assert translate(req(tools=[WEATHER, bare, untyped]))["toolConfig"] == {"tools": [
        WEATHER_OUT,
        {"toolSpec": {"name": "now",
                      "inputSchema": {"json": {"type": "object", "properties": {}}}}},
        {"toolSpec": {"name": "echo",
                      "inputSchema": {"json": {"type": "object", "properties": {"x": {}}}}}},
    ]}


@pytest.mark.parametrize(
    ("fields", "choice"),
    [
        ({}, None),
        ({"tool_choice": "auto"}, {"auto": {}}),
        ({"tool_choice": "required"}, {"any": {}}),
        ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
         {"tool": {"name": "get_weather"}}),
        ({"parallel_tool_calls": True}, None),
        ({"parallel_tool_calls": False, "tool_choice": "required"}, {"any": {}}),
    ],
)
def test_tool_choice(fields: dict[str, Any], choice: dict[str, Any] | None) -> None:
    config = translate(req(tools=[WEATHER], **fields))["toolConfig"]
    assert config["tools"] == [WEATHER_OUT]
    assert config.get("toolChoice") == choice


@pytest.mark.parametrize(
    "fields",
    [{}, {"tool_choice": "none"}, {"parallel_tool_calls": False}, {"tools": []},
     {"tools": [WEATHER], "tool_choice": "none"}],
)
def test_no_tool_config(fields: dict[str, Any]) -> None:
    assert "toolConfig" not in translate(req(**fields))


def test_tool_history_needs_a_tool_config() -> None:
    assistant = {"role": "assistant", "content": "", "tool_calls": [call("t", "f", "{}")]}
    result = {"role": "tool", "tool_call_id": "t", "content": "r"}
    # without tools Converse would refuse the toolUse/toolResult blocks
    assert refused(req(messages=[USER, assistant, result])).pointer == "/messages/1/tool_calls"
    assert refused(req(messages=[USER, result])).pointer == "/messages/1"
    assert refused(req(messages=[USER, assistant, result], tools=[])).pointer == (
        "/messages/1/tool_calls")
    # tool_choice "none" cannot be expressed once tools must be sent
    error = refused(req(messages=[USER, assistant, result], tools=[WEATHER], tool_choice="none"))
    assert error.pointer == "/tool_choice"
    # with a response format the format tool is forced, so the tools can stay
    out = translate(req(messages=[USER, assistant, result], tools=[WEATHER], tool_choice="none",
                        response_format={"type": "json_object"}))
    assert out["toolConfig"]["toolChoice"] == {"tool": {"name": RESPONSE_FORMAT_TOOL}}
    # an assistant turn with an empty tool_calls list is no tool history
    out = translate(req(messages=[USER, {"role": "assistant", "content": "x", "tool_calls": []}]))
    assert "toolConfig" not in out


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"tool_choice": "required"}, "/tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "/tool_choice"),
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
        ({"tools": [{"type": "function", "function": {"name": "f", "description": 1}}]},
         "/tools/0/function/description"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "array"}}}]}, "/tools/0/function/parameters/type"),
        ({"tools": [{"type": "function", "function": {"name": RESPONSE_FORMAT_TOOL}}]},
         "/tools/0/function/name"),
    ],
)
def test_bad_tools(fields: dict[str, Any], pointer: str) -> None:
    assert refused(req(**fields)).pointer == pointer


@pytest.mark.parametrize(
    ("fields", "default", "max_tokens"),
    [
        ({}, DEFAULT_MAX, DEFAULT_MAX),
        ({}, None, None),
        ({"max_tokens": 100}, DEFAULT_MAX, 100),
        ({"max_tokens": 100}, None, 100),
        ({"max_completion_tokens": 200}, None, 200),
        ({"max_tokens": 100, "max_completion_tokens": 200}, DEFAULT_MAX, 200),
        ({"max_tokens": None}, DEFAULT_MAX, DEFAULT_MAX),
        ({"max_tokens": 100, "max_completion_tokens": None}, None, 100),
    ],
)
def test_max_tokens(fields: dict[str, Any], default: int | None, max_tokens: int | None) -> None:
    out = to_converse(req(**fields), default)
    assert out.get("inferenceConfig", {}).get("maxTokens") == max_tokens


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"temperature": 0.3}, {"temperature": 0.3}),
        ({"temperature": 0}, {"temperature": 0}),
        ({"temperature": 1.7}, {"temperature": 1.0}),
        ({"top_p": 0.9}, {"topP": 0.9}),
        ({"stop": "END"}, {"stopSequences": ["END"]}),
        ({"stop": ["a", "b"]}, {"stopSequences": ["a", "b"]}),
        ({"stop": ["", "b"]}, {"stopSequences": ["b"]}),
        ({"stop": ""}, {}),
        ({"stop": []}, {}),
        ({"stop": None}, {}),
        ({"n": 1, "logprobs": False, "top_logprobs": 0}, {}),
        # Fields Converse lacks are dropped.
        ({"presence_penalty": 0.5, "frequency_penalty": 0.2, "seed": 7,
          "logit_bias": {"50256": -100}, "service_tier": "auto", "store": True,
          "reasoning_effort": "low", "verbosity": "low", "prompt_cache_key": "k",
          "stream_options": {"include_usage": True}, "prediction": {"type": "content"},
          "modalities": ["text"], "stream": True, "user": "u-1", "safety_identifier": "s",
          "metadata": {"user_id": "m"}, "parallel_tool_calls": False,
          "some_future_field": 1}, {}),
    ],
)
def test_inference_config_and_dropped_fields(
    fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    out = to_converse(req(**fields))
    assert out == {"messages": [HI], **({"inferenceConfig": expected} if expected else {})}


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
    ],
)
def test_refused_fields(fields: dict[str, Any], pointer: str) -> None:
    assert refused(req(**fields)).pointer == pointer


def test_body_must_be_an_object() -> None:
    with pytest.raises(TranslationError) as info:
        to_converse([], 1)  # type: ignore[arg-type]
    assert info.value.pointer == ""


SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}},
          "required": ["answer"], "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema",
               "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True,
                               "description": "The final answer."}}
FORCED_FORMAT = {"tool": {"name": RESPONSE_FORMAT_TOOL}}


def _tool_names(out: dict[str, Any]) -> list[str]:
    return [t["toolSpec"]["name"] for t in out.get("toolConfig", {}).get("tools", [])]


@pytest.mark.parametrize(
    ("fields", "tools", "choice"),
    [
        ({"response_format": {"type": "text"}}, [], None),
        ({"response_format": {"type": "json_object"}}, [RESPONSE_FORMAT_TOOL], FORCED_FORMAT),
        ({"response_format": JSON_SCHEMA}, [RESPONSE_FORMAT_TOOL], FORCED_FORMAT),
        ({"response_format": JSON_SCHEMA, "tool_choice": "none"}, [RESPONSE_FORMAT_TOOL],
         FORCED_FORMAT),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER]},
         ["get_weather", RESPONSE_FORMAT_TOOL], {"any": {}}),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER], "tool_choice": "auto"},
         ["get_weather", RESPONSE_FORMAT_TOOL], {"any": {}}),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER], "tool_choice": "none"},
         ["get_weather", RESPONSE_FORMAT_TOOL], FORCED_FORMAT),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER], "tool_choice": "required"},
         ["get_weather"], {"any": {}}),
        ({"response_format": JSON_SCHEMA, "tools": [WEATHER],
          "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
         ["get_weather"], {"tool": {"name": "get_weather"}}),
    ],
)
def test_response_format_becomes_a_forced_tool(
    fields: dict[str, Any], tools: list[str], choice: dict[str, Any] | None
) -> None:
    out = translate(req(**fields))
    assert _tool_names(out) == tools
    assert out.get("toolConfig", {}).get("toolChoice") == choice


def _format_spec(out: dict[str, Any]) -> dict[str, Any]:
    specs: list[dict[str, Any]] = [t["toolSpec"] for t in out["toolConfig"]["tools"]
                                   if t["toolSpec"]["name"] == RESPONSE_FORMAT_TOOL]
    assert len(specs) == 1
    return specs[0]


def test_response_format_tool_schema_and_description() -> None:
    spec = _format_spec(translate(req(response_format=JSON_SCHEMA)))
    assert spec["inputSchema"] == {"json": SCHEMA}
    assert "The final answer." in spec["description"]
    spec = _format_spec(translate(req(response_format={"type": "json_object"})))
    assert spec["inputSchema"] == {"json": {"type": "object"}}
    no_schema = {"type": "json_schema", "json_schema": {"name": "x"}}
    spec = _format_spec(translate(req(response_format=no_schema)))
    assert spec["inputSchema"] == {"json": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    ("response_format", "pointer"),
    [
        ({"type": "yaml"}, "/response_format/type"),
        ("json", "/response_format"),
        ({"type": "json_schema"}, "/response_format/json_schema"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}},
         "/response_format/json_schema/schema/type"),
        ({"type": "json_schema", "json_schema": {"name": "x", "description": 3}},
         "/response_format/json_schema/description"),
    ],
)
def test_bad_response_format(response_format: Any, pointer: str) -> None:
    assert refused(req(response_format=response_format)).pointer == pointer


# ---------------------------------------------------------------------------------------------
# responses

USAGE = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 135,
         "cacheReadInputTokens": 100, "cacheWriteInputTokens": 20}
OPENAI_USAGE = {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                "prompt_tokens_details": {"cached_tokens": 100}}


def converse(content: list[dict[str, Any]], stop_reason: str | None = "end_turn",
             **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"output": {"message": {"role": "assistant", "content": content}},
                           "metrics": {"latencyMs": 321}}
    if stop_reason is not None:
        out["stopReason"] = stop_reason
    out.update(extra)
    return out


def completion(data: Mapping[str, Any], model: str = "gpt-4o") -> dict[str, Any]:
    """`from_converse`, checked against the openai SDK's ChatCompletion type."""
    out = from_converse(data, model, 1700000000, "chatcmpl-br-1")
    parsed = ChatCompletion.model_validate(out)
    assert parsed.id == "chatcmpl-br-1"
    assert parsed.choices[0].message.content == out["choices"][0]["message"]["content"]
    return out


def test_text_response() -> None:
    resp = converse([{"text": "Hello"}, {"text": ", world"}], usage=USAGE)
    assert completion(resp) == {
        "id": "chatcmpl-br-1",
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
    resp = converse([
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
        {"text": "Let me check."},
        tool_use("tooluse_1", "get_weather", {"city": "Zürich"}),
        tool_use("tooluse_2", "now", {}),
    ], "tool_use")
    choice = completion(resp)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        call("tooluse_1", "get_weather", '{"city": "Zürich"}'),
        call("tooluse_2", "now", "{}"),
    ]
    parsed = ChatCompletion.model_validate(completion(resp))
    tool_calls = parsed.choices[0].message.tool_calls or []
    assert [c.id for c in tool_calls] == ["tooluse_1", "tooluse_2"]


def test_only_tool_use_gives_null_content() -> None:
    msg = completion(converse([tool_use("t", "f", {"a": 1})], "tool_use"))["choices"][0][
        "message"]
    assert msg["content"] is None
    assert len(msg["tool_calls"]) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([], ""),
        ([{"reasoningContent": {"reasoningText": {"text": "x", "signature": "s"}}}], ""),
        ([{"reasoningContent": {"redactedContent": "eHg="}}, {"text": "a"}], "a"),
        ([{"image": {"format": "png", "source": {"bytes": "AAAA"}}}, {"text": "b"}], "b"),
        ([{"text": ""}], ""),
    ],
)
def test_ignored_blocks(content: list[dict[str, Any]], expected: str) -> None:
    msg = completion(converse(content))["choices"][0]["message"]
    assert msg["content"] == expected
    assert "tool_calls" not in msg


def test_response_format_tool_comes_back_as_content() -> None:
    resp = converse([tool_use("t", RESPONSE_FORMAT_TOOL, {"answer": 42})], "tool_use")
    choice = completion(resp)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert json.loads(choice["message"]["content"]) == {"answer": 42}
    assert "tool_calls" not in choice["message"]


def test_response_format_tool_beside_a_real_tool_call() -> None:
    resp = converse([tool_use("t1", "f", {}), tool_use("t2", RESPONSE_FORMAT_TOOL, {"a": 1})],
                    "tool_use")
    choice = completion(resp)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert json.loads(choice["message"]["content"]) == {"a": 1}
    assert [c["id"] for c in choice["message"]["tool_calls"]] == ["t1"]


STOP_REASONS = [
    ("end_turn", "stop"),
    ("stop_sequence", "stop"),
    ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"),
    ("tool_use", "tool_calls"),
    ("guardrail_intervened", "content_filter"),
    ("content_filtered", "content_filter"),
    ("malformed_model_output", "stop"),
    ("some_new_reason", "stop"),
    (None, "stop"),
]


@pytest.mark.parametrize(("stop_reason", "finish"), STOP_REASONS)
def test_stop_reasons(stop_reason: str | None, finish: str) -> None:
    resp = converse([tool_use("t", "f", {})], stop_reason)
    assert completion(resp)["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (USAGE, OPENAI_USAGE),
        # no cache fields: the cached count is unknown (left out), not 0
        ({"inputTokens": 7, "outputTokens": 3, "totalTokens": 10},
         {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}),
        ({"inputTokens": 7, "outputTokens": 3, "cacheReadInputTokens": None,
          "cacheWriteInputTokens": 4},
         {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}),
        ({"inputTokens": 2, "outputTokens": 1, "cacheReadInputTokens": 900},
         {"prompt_tokens": 902, "completion_tokens": 1, "total_tokens": 903,
          "prompt_tokens_details": {"cached_tokens": 900}}),
        ({"inputTokens": 0, "outputTokens": 0, "cacheReadInputTokens": 0},
         {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
          "prompt_tokens_details": {"cached_tokens": 0}}),
    ],
)
def test_usage(usage: dict[str, Any], expected: dict[str, Any]) -> None:
    assert completion(converse([{"text": "x"}], usage=usage))["usage"] == expected


@pytest.mark.parametrize("extra", [{}, {"usage": None}])
def test_missing_usage_is_absent_not_zero(extra: dict[str, Any]) -> None:
    assert "usage" not in completion(converse([{"text": "x"}], **extra))


C = "/output/message/content"


@pytest.mark.parametrize(
    ("resp", "pointer"),
    [
        ([], ""),
        ("not an object", ""),
        ({}, "/output"),
        ({"output": {}}, "/output/message"),
        ({"output": {"message": {}}}, C),
        ({"output": {"message": {"content": "text"}}}, C),
        ({"output": {"message": {"content": [{"text": "a"}, "b"]}}}, f"{C}/1"),
        ({"output": {"message": {"content": [{"text": None}]}}}, f"{C}/0/text"),
        ({"output": {"message": {"content": [{"toolUse": "x"}]}}}, f"{C}/0/toolUse"),
        ({"output": {"message": {"content": [{"toolUse": {"name": "f", "input": {}}}]}}},
         f"{C}/0/toolUse/toolUseId"),
        ({"output": {"message": {"content": [{"toolUse": {"toolUseId": "t", "input": {}}}]}}},
         f"{C}/0/toolUse/name"),
        ({"output": {"message": {"content": [
            {"toolUse": {"toolUseId": "t", "name": "f", "input": "{}"}}]}}},
         f"{C}/0/toolUse/input"),
        ({**converse([]), "stopReason": 3}, "/stopReason"),
        (converse([], usage="lots"), "/usage"),
        (converse([], usage={"outputTokens": 1}), "/usage/inputTokens"),
        (converse([], usage={"inputTokens": 1}), "/usage/outputTokens"),
        (converse([], usage={"inputTokens": -1, "outputTokens": 1}), "/usage/inputTokens"),
        (converse([], usage={"inputTokens": 1, "outputTokens": 1, "cacheReadInputTokens": "2"}),
         "/usage/cacheReadInputTokens"),
        (converse([], usage={"inputTokens": 1, "outputTokens": 1,
                             "cacheWriteInputTokens": True}), "/usage/cacheWriteInputTokens"),
    ],
)
def test_malformed_responses(resp: Any, pointer: str) -> None:
    with pytest.raises(TranslationError) as info:
        from_converse(resp, "m", 0, "id")
    assert info.value.pointer == pointer


def test_error_shaped_body_is_malformed() -> None:
    with pytest.raises(TranslationError) as info:
        from_converse({"message": "The security token included in the request is invalid."},
                      "m", 0, "id")
    assert info.value.pointer == "/output"


# ---------------------------------------------------------------------------------------------
# streams

# A realistic ConverseStream (Claude on Bedrock, as the event-stream decoder hands the frames
# over): the payloads carry Bedrock's `p` padding field, text arrives without a
# contentBlockStart, the tool input arrives as string fragments that only parse once joined, and
# metadata (usage, metrics) comes after messageStop.
P = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"
CALL_ID = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
DOCS_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"p": P[:10], "role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Okay"}, "p": P[:4]}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "p": P,
                           "delta": {"text": ", let's check the weather for San Francisco, CA:"}}),
    ("contentBlockStop", {"contentBlockIndex": 0, "p": P[:20]}),
    ("contentBlockStart", {"contentBlockIndex": 1, "p": P[:3], "start": {"toolUse": {
        "name": "get_weather", "toolUseId": CALL_ID}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ""}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {
        "input": '{"location":'}}, "p": P[:7]}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {
        "input": ' "San Francisc'}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {
        "input": 'o, CA", "unit": "fah'}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {
        "input": 'renheit"}'}}}),
    ("contentBlockStop", {"contentBlockIndex": 1, "p": P[:9]}),
    ("messageStop", {"p": P[:30], "stopReason": "tool_use"}),
    ("metadata", {"metrics": {"latencyMs": 1543}, "p": P[:2], "usage": {
        "inputTokens": 472, "outputTokens": 89, "totalTokens": 1561,
        "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 0}}),
]
DOCS_FINAL = converse([
    {"text": "Okay, let's check the weather for San Francisco, CA:"},
    tool_use(CALL_ID, "get_weather", {"location": "San Francisco, CA", "unit": "fahrenheit"}),
], "tool_use", usage={"inputTokens": 472, "outputTokens": 89, "totalTokens": 1561,
                      "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 0})


def feed_all(events: list[tuple[str, dict[str, Any]]], include_usage: bool = True) -> tuple[
    list[dict[str, Any]], ConverseStreamTranslator
]:
    translator = ConverseStreamTranslator("gpt-4o", 1700000000, "chatcmpl-br-1", include_usage)
    chunks = [c for kind, payload in events for c in translator.feed(kind, payload)]
    for chunk in chunks:  # every chunk is one the openai SDK accepts
        ChatCompletionChunk.model_validate(chunk)
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
    chunks, translator = feed_all(DOCS_EVENTS)
    call_start = {"index": 0, "id": CALL_ID, "type": "function",
                  "function": {"name": "get_weather", "arguments": ""}}

    def args(fragment: str) -> dict[str, Any]:
        return {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}

    assert deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Okay"}, None),
        ({"content": ", let's check the weather for San Francisco, CA:"}, None),
        ({"tool_calls": [call_start]}, None),
        (args('{"location":'), None),
        (args(' "San Francisc'), None),
        (args('o, CA", "unit": "fah'), None),
        (args('renheit"}'), None),
        ({}, "tool_calls"),
    ]
    for chunk in chunks:
        assert (chunk["id"], chunk["model"], chunk["created"]) == (
            "chatcmpl-br-1", "gpt-4o", 1700000000)
    assert all(c["usage"] is None for c in chunks[:-1])
    usage = {"prompt_tokens": 1472, "completion_tokens": 89, "total_tokens": 1561,
             "prompt_tokens_details": {"cached_tokens": 1000}}
    assert chunks[-1] == {"id": "chatcmpl-br-1", "object": "chat.completion.chunk",
                          "created": 1700000000, "model": "gpt-4o", "choices": [],
                          "usage": usage}
    assert translator.usage() == usage
    assert translator.stopped
    assert translator.done


def test_docs_stream_agrees_with_the_non_streaming_translation() -> None:
    whole = completion(DOCS_FINAL)
    rebuilt = accumulate(feed_all(DOCS_EVENTS)[0])
    message = whole["choices"][0]["message"]
    assert rebuilt["content"] == message["content"]
    assert rebuilt["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert rebuilt["usage"] == whole["usage"]
    [streamed] = rebuilt["tool_calls"]
    [unary] = message["tool_calls"]
    assert json.loads(streamed["function"]["arguments"]) == json.loads(
        unary["function"]["arguments"])
    assert {**streamed, "function": None} == {**unary, "function": None}


def test_stream_done_only_after_metadata() -> None:
    translator = ConverseStreamTranslator("m", 0, "id")
    for kind, payload in DOCS_EVENTS[:-1]:
        translator.feed(kind, payload)
        assert not translator.done
    assert translator.stopped
    assert translator.usage() is None
    kind, payload = DOCS_EVENTS[-1]
    assert translator.feed(kind, payload)[0]["choices"] == []
    assert translator.done
    assert translator.feed(kind, payload) == []  # a second metadata adds nothing


def test_stream_without_include_usage() -> None:
    chunks, translator = feed_all(DOCS_EVENTS, include_usage=False)
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert translator.usage() is not None
    assert translator.done


def start() -> tuple[str, dict[str, Any]]:
    return ("messageStart", {"role": "assistant"})


def text_delta(index: int, t: str) -> tuple[str, dict[str, Any]]:
    return ("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": t}})


def tool_start(index: int, call_id: str, name: str) -> tuple[str, dict[str, Any]]:
    return ("contentBlockStart", {"contentBlockIndex": index, "start": {
        "toolUse": {"toolUseId": call_id, "name": name}}})


def input_delta(index: int, partial: Any) -> tuple[str, dict[str, Any]]:
    return ("contentBlockDelta", {"contentBlockIndex": index,
                                  "delta": {"toolUse": {"input": partial}}})


def reasoning_delta(index: int, t: str) -> tuple[str, dict[str, Any]]:
    return ("contentBlockDelta", {"contentBlockIndex": index,
                                  "delta": {"reasoningContent": {"text": t}}})


def stop(reason: str | None = "end_turn") -> tuple[str, dict[str, Any]]:
    return ("messageStop", {} if reason is None else {"stopReason": reason})


def metadata(usage: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    payload: dict[str, Any] = {"metrics": {"latencyMs": 10}}
    if usage is not None:
        payload["usage"] = usage
    return ("metadata", payload)


def test_stream_metadata_without_usage_sends_no_usage_chunk() -> None:
    chunks, translator = feed_all([start(), text_delta(0, "hi"), stop(), metadata()])
    assert translator.usage() is None
    assert translator.done
    assert all(c["choices"] for c in chunks)
    assert deltas(chunks)[-1] == ({}, "stop")


def test_stream_metadata_before_message_stop_still_ends_with_usage() -> None:
    usage = {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}
    chunks, translator = feed_all([start(), text_delta(0, "hi"), metadata(usage), stop()])
    assert translator.done
    assert deltas(chunks)[-1] == ({}, "stop")
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2,
                                   "total_tokens": 5}


@pytest.mark.parametrize(("stop_reason", "finish"), STOP_REASONS)
def test_stream_stop_reasons(stop_reason: str | None, finish: str) -> None:
    chunks, _ = feed_all([start(), tool_start(0, "t", "f"), stop(stop_reason)])
    assert deltas(chunks)[-1] == ({}, finish)


def test_stream_tool_indexes_count_tool_blocks_only() -> None:
    events = [
        start(),
        reasoning_delta(0, "Let me think"),
        ("contentBlockDelta", {"contentBlockIndex": 0,
                               "delta": {"reasoningContent": {"signature": "EqQB"}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        text_delta(1, "Two calls."),
        tool_start(2, "a", "f"),
        tool_start(3, "b", "g"),
        input_delta(3, '{"y":'),
        input_delta(2, '{"x": 1}'),
        input_delta(3, " 2}"),
        stop("tool_use"),
    ]
    rebuilt = accumulate(feed_all(events)[0])
    assert rebuilt["content"] == "Two calls."
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in rebuilt["tool_calls"]] == [("a", "f", {"x": 1}), ("b", "g", {"y": 2})]
    assert rebuilt["finish_reason"] == "tool_calls"


def test_stream_response_format_tool_streams_content() -> None:
    events = [start(), tool_start(0, "t", RESPONSE_FORMAT_TOOL), input_delta(0, '{"answer"'),
              input_delta(0, ": 42}"), stop("tool_use")]
    assert deltas(feed_all(events)[0]) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": '{"answer"'}, None),
        ({"content": ": 42}"}, None),
        ({}, "stop"),
    ]


@pytest.mark.parametrize(
    "event",
    [
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("someFutureEvent", {"x": 1}),
        text_delta(0, ""),
        reasoning_delta(1, "thinking"),
        ("contentBlockStart", {"contentBlockIndex": 5, "start": {"image": {}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"citation": {}}}),
    ],
)
def test_events_that_produce_nothing(event: tuple[str, dict[str, Any]]) -> None:
    translator = ConverseStreamTranslator("m", 0, "id")
    translator.feed(*start())
    translator.feed(*text_delta(0, "x"))
    assert translator.feed(*event) == []


def test_input_of_a_non_tool_block_is_ignored() -> None:
    translator = ConverseStreamTranslator("m", 0, "id")
    translator.feed(*start())
    translator.feed("contentBlockStart", {"contentBlockIndex": 0, "start": {"image": {}}})
    assert translator.feed(*input_delta(0, "{}")) == []


def test_message_stop_twice_emits_once() -> None:
    translator = ConverseStreamTranslator("m", 0, "id")
    translator.feed(*start())
    assert len(translator.feed(*stop())) == 1
    assert translator.feed(*stop()) == []


@pytest.mark.parametrize(
    ("events", "pointer"),
    [
        ([text_delta(0, "x")], ""),
        ([stop()], ""),
        ([metadata()], ""),
        ([start(), start()], ""),
        ([("messageStart", {"role": "user"})], "/role"),
        ([("messageStart", {"role": 1})], "/role"),
        ([start(), ("contentBlockDelta", {"delta": {"text": "x"}})], "/contentBlockIndex"),
        ([start(), ("contentBlockDelta", {"contentBlockIndex": -1, "delta": {"text": "x"}})],
         "/contentBlockIndex"),
        ([start(), ("contentBlockDelta", {"contentBlockIndex": 0})], "/delta"),
        ([start(), text_delta(0, None)], "/delta/text"),  # type: ignore[arg-type]
        ([start(), input_delta(0, "{}")], "/contentBlockIndex"),
        ([start(), text_delta(0, "x"), input_delta(0, "{}")], "/delta/toolUse"),
        ([start(), tool_start(0, "t", "f"), text_delta(0, "x")], "/delta/text"),
        ([start(), tool_start(0, "t", "f"), input_delta(0, None)], "/delta/toolUse/input"),
        ([start(), tool_start(0, "t", "f"), ("contentBlockDelta", {
            "contentBlockIndex": 0, "delta": {"toolUse": "x"}})], "/delta/toolUse"),
        ([start(), tool_start(0, "t", "f"), tool_start(0, "u", "f")], "/contentBlockIndex"),
        ([start(), text_delta(0, "x"), tool_start(0, "u", "f")], "/contentBlockIndex"),
        ([start(), ("contentBlockStart", {"contentBlockIndex": 0})], "/start"),
        ([start(), ("contentBlockStart", {"contentBlockIndex": 0, "start": {
            "toolUse": {"name": "f"}}})], "/start/toolUse/toolUseId"),
        ([start(), ("contentBlockStart", {"contentBlockIndex": 0, "start": {
            "toolUse": {"toolUseId": "t"}}})], "/start/toolUse/name"),
        ([start(), ("messageStop", {"stopReason": 1})], "/stopReason"),
        ([start(), metadata({"inputTokens": 1})], "/usage/outputTokens"),
        ([start(), ("metadata", {"usage": "lots"})], "/usage"),
    ],
)
def test_malformed_stream_events(events: list[tuple[str, Any]], pointer: str) -> None:
    translator = ConverseStreamTranslator("m", 0, "id")
    with pytest.raises(TranslationError) as info:
        for kind, payload in events:
            translator.feed(kind, payload)
    assert info.value.pointer == pointer


def test_payload_must_be_an_object() -> None:
    with pytest.raises(TranslationError) as info:
        ConverseStreamTranslator("m", 0, "id").feed("messageStart", [])  # type: ignore[arg-type]
    assert info.value.pointer == ""


@pytest.mark.parametrize(
    "exception_type",
    ["throttlingException", "modelStreamErrorException", "serviceUnavailableException",
     "validationException", "internalServerException"],
)
def test_stream_exception(exception_type: str) -> None:
    error = stream_exception(exception_type, {"message": "Too many requests, please wait."})
    assert isinstance(error, StreamError)
    assert (error.type, error.message) == (exception_type, "Too many requests, please wait.")
    assert str(error) == f"{exception_type}: Too many requests, please wait."


def test_stream_exception_bounds_and_defaults() -> None:
    long = stream_exception("modelStreamErrorException",
                            {"message": "x" * 5000, "originalStatusCode": 500})
    assert long.message == "x" * MAX_EXCEPTION_MESSAGE_CHARS
    assert stream_exception("internalServerException", {}).message == ""
    assert stream_exception("internalServerException", {"message": 3}).message == ""
    odd = stream_exception("e" * 500, "not a mapping")  # type: ignore[arg-type]
    assert (odd.type, odd.message) == ("e" * 100, "")
    assert stream_exception("", {}).type == "exception"


# ---------------------------------------------------------------------------------------------
# properties


def _stream_events_for(final: dict[str, Any], splits: list[int]) -> list[tuple[str, Any]]:
    """The ConverseStream events Bedrock would send for the Converse response `final`."""
    events: list[tuple[str, Any]] = [start()]
    for i, block in enumerate(final["output"]["message"]["content"]):
        def pieces(s: str, i: int = i) -> list[str]:
            cut = splits[i % len(splits)] % (len(s) + 1) if splits else 0
            return [s[:cut], s[cut:]]
        if "text" in block:
            events += [text_delta(i, p) for p in pieces(block["text"])]
        elif "toolUse" in block:
            use = block["toolUse"]
            events.append(tool_start(i, use["toolUseId"], use["name"]))
            events += [input_delta(i, p)
                       for p in pieces(json.dumps(use["input"], ensure_ascii=False))]
        else:
            events.append(reasoning_delta(i, block["reasoningContent"]["reasoningText"]["text"]))
        events.append(("contentBlockStop", {"contentBlockIndex": i}))
    events.append(stop(final.get("stopReason")))
    events.append(metadata(final.get("usage")))
    return events


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6,
)
_blocks = st.one_of(
    st.builds(lambda t: {"text": t}, st.text(max_size=20)),
    st.builds(lambda n, i, inp: tool_use(f"tooluse_{i}", n, inp),
              st.sampled_from(["get_weather", "search", RESPONSE_FORMAT_TOOL]),
              st.integers(0, 10**6),
              st.dictionaries(st.text(max_size=5), _json_values, max_size=3)),
    st.builds(lambda t: {"reasoningContent": {"reasoningText": {"text": t, "signature": "s"}}},
              st.text(max_size=8)),
)
_usages = st.none() | st.builds(
    lambda i, o, r, w: {"inputTokens": i, "outputTokens": o, "totalTokens": i + o,
                        **({} if r is None else {"cacheReadInputTokens": r}),
                        **({} if w is None else {"cacheWriteInputTokens": w})},
    st.integers(0, 10**6), st.integers(0, 10**5),
    st.none() | st.integers(0, 10**6), st.none() | st.integers(0, 10**6))


@settings(max_examples=100, deadline=None)
@given(
    content=st.lists(_blocks, max_size=5),
    stop_reason=st.sampled_from([r for r, _ in STOP_REASONS]),
    usage=_usages,
    splits=st.lists(st.integers(0, 100), max_size=4),
)
def test_streaming_agrees_with_non_streaming(
    content: list[dict[str, Any]], stop_reason: str | None, usage: dict[str, int] | None,
    splits: list[int],
) -> None:
    final = converse(content, stop_reason)
    if usage is not None:
        final["usage"] = usage
    whole = completion(final)
    chunks, translator = feed_all(_stream_events_for(final, splits))
    assert translator.done
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


@settings(max_examples=100, deadline=None)
@given(
    reply=st.text(max_size=10),
    arguments=st.lists(st.dictionaries(st.text(max_size=5), _json_values, max_size=3),
                       max_size=3),
)
def test_assistant_turn_round_trips(reply: str, arguments: list[dict[str, Any]]) -> None:
    """An OpenAI assistant message → Converse blocks → read back as a Converse answer → the same
    message (text, and each tool call's id, name and arguments)."""
    calls = [call(f"tooluse_{k}", "search", json.dumps(a)) for k, a in enumerate(arguments)]
    assistant: dict[str, Any] = {"role": "assistant", "content": reply}
    if calls:
        assistant["tool_calls"] = calls
    if not reply and not calls:
        return  # an empty assistant turn is refused (tested above)
    out = translate(req(messages=[USER, assistant], tools=[WEATHER]))
    blocks = out["messages"][1]["content"]
    message = completion(converse(blocks, "tool_use" if calls else "end_turn"))["choices"][0][
        "message"]
    assert message["content"] == (reply if reply or not calls else None)
    back = message.get("tool_calls", [])
    assert [(c["id"], c["function"]["name"]) for c in back] == [
        (c["id"], c["function"]["name"]) for c in calls]
    assert [json.loads(c["function"]["arguments"]) for c in back] == arguments


_roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "assistant_call"])


@settings(max_examples=100, deadline=None)
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
            translate(req(messages=messages, tools=[WEATHER]))
        return
    out = translate(req(messages=messages, tools=[WEATHER]))
    roles = [m["role"] for m in out["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))
    system = "\n\n".join(m["content"] for m in messages if m["role"] in ("system", "developer"))
    assert out.get("system") == ([{"text": system}] if system else None)

    def block_text(block: dict[str, Any]) -> str:
        if "toolUse" in block:
            return json.dumps(block["toolUse"]["input"])
        if "toolResult" in block:
            return str(block["toolResult"]["content"][0]["text"])
        return str(block["text"])

    blocks = [b for m in out["messages"] for b in m["content"]]
    # Every text, tool call and tool result survives (tool results may move to a turn's front).
    assert sorted(block_text(b) for b in blocks) == sorted(
        [m["content"] for m in conversation]
        + [json.dumps({"t": m["content"]}) for m in conversation if "tool_calls" in m])
    for m in out["messages"]:
        kinds = [next(iter(b)) for b in m["content"]]
        if m["role"] == "user":
            assert kinds == sorted(kinds, key=lambda k: k != "toolResult")
            assert "toolUse" not in kinds
        else:
            assert "toolResult" not in kinds
