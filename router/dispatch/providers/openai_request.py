"""Reading an OpenAI chat-completions request, the part every translator shares (Anthropic
Messages, Bedrock Converse): what no translation can carry, system text, tool-call arguments,
function tools and the `response_format` emulated as a forced tool. Each returns wire-neutral
values; the translators shape them for their API. `target` names the API in messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.dispatch.providers.anthropic_common import (
    RESPONSE_FORMAT_TOOL,
    fail,
    want_bool,
    want_int,
    want_list,
    want_mapping,
    want_str,
)


@dataclass(frozen=True)
class FunctionTool:
    """A function tool as the caller declared it (its schema an object schema)."""

    name: str
    description: str | None
    schema: dict[str, Any]


def refuse_unsupported(body: Mapping[str, Any], target: str) -> None:
    """Refuse what dropping would change for the caller: several choices, log probabilities,
    audio, web search, legacy function calling."""
    n = body.get("n")
    if n is not None and want_int(n, "/n", 1) > 1:
        fail("/n", f"{target} returns one choice; `n` > 1 is not supported")
    if body.get("logprobs") is not None and want_bool(body["logprobs"], "/logprobs"):
        fail("/logprobs", f"{target} does not return log probabilities")
    if body.get("top_logprobs") is not None and want_int(body["top_logprobs"], "/top_logprobs"):
        fail("/top_logprobs", f"{target} does not return log probabilities")
    if body.get("audio") is not None:
        fail("/audio", f"{target} does not produce audio")
    modalities = body.get("modalities")
    if modalities is not None and "audio" in want_list(modalities, "/modalities"):
        fail("/modalities", f"{target} does not produce audio")
    if body.get("web_search_options") is not None:
        fail("/web_search_options", f"web search is not supported for {target}")
    for legacy in ("functions", "function_call"):
        if body.get(legacy) is not None:
            fail(f"/{legacy}", "legacy function calling is not supported; use `tools`")


def system_text(content: Any, pointer: str) -> str:
    """A system or developer message's text (text parts joined with `\\n`)."""
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for j, raw in enumerate(want_list(content, pointer)):
        part = want_mapping(raw, f"{pointer}/{j}")
        if part.get("type") != "text":
            fail(f"{pointer}/{j}/type", "system content may only hold text parts")
        texts.append(want_str(part.get("text"), f"{pointer}/{j}/text"))
    return "\n".join(t for t in texts if t)


def arguments(value: Any, pointer: str) -> dict[str, Any]:
    """A tool call's arguments as an object (a JSON string or an object; empty is `{}`)."""
    if isinstance(value, Mapping):
        return dict(value)
    text = want_str(value, pointer)
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        fail(pointer, f"tool call arguments are not valid JSON: {exc}")
    except RecursionError:
        fail(pointer, "tool call arguments are nested too deeply")
    if not isinstance(parsed, dict):
        fail(pointer, "tool call arguments must be a JSON object")
    return parsed


def object_schema(value: Any, pointer: str, target: str) -> dict[str, Any]:
    """A JSON schema that must describe an object (`{"type": "object"}` when absent)."""
    if value is None:
        return {"type": "object", "properties": {}}
    schema = dict(want_mapping(value, pointer))
    schema.setdefault("type", "object")
    if schema["type"] != "object":
        fail(f"{pointer}/type", f"{target} needs an object schema (`type: object`)")
    return schema


def function_tools(value: Any, target: str) -> list[FunctionTool]:
    """`tools`: function tools only; the response-format tool's name is reserved."""
    tools: list[FunctionTool] = []
    for j, raw in enumerate(want_list(value, "/tools")):
        pointer = f"/tools/{j}"
        tool = want_mapping(raw, pointer)
        if tool.get("type", "function") != "function":
            fail(f"{pointer}/type", f"tool type `{tool.get('type')}` is not supported")
        function = want_mapping(tool.get("function"), f"{pointer}/function")
        name = want_str(function.get("name"), f"{pointer}/function/name")
        if name == RESPONSE_FORMAT_TOOL:
            fail(f"{pointer}/function/name", f"tool name `{name}` is reserved")
        description = None
        if function.get("description") is not None:
            description = want_str(function["description"], f"{pointer}/function/description")
        schema = object_schema(function.get("parameters"), f"{pointer}/function/parameters",
                               target)
        tools.append(FunctionTool(name, description, schema))
    return tools


def response_format_tool(value: Any, target: str) -> FunctionTool | None:
    """The forced tool that emulates `response_format` (`json_object`, `json_schema`); None
    for `text` or no format."""
    if value is None:
        return None
    fmt = want_mapping(value, "/response_format")
    kind = fmt.get("type")
    description = "Give your complete answer to the user by calling this tool."
    if kind == "text":
        return None
    if kind == "json_object":
        schema: dict[str, Any] = {"type": "object"}
        description += " Its input is the answer, as a JSON object."
    elif kind == "json_schema":
        spec = want_mapping(fmt.get("json_schema"), "/response_format/json_schema")
        schema = object_schema(spec.get("schema"), "/response_format/json_schema/schema", target)
        description += " Its input is the answer, as JSON following the schema."
        if spec.get("description") is not None:
            extra = want_str(spec["description"], "/response_format/json_schema/description")
            description += f" {extra}"
    else:
        fail("/response_format/type", f"response_format type `{kind}` is not supported")
    return FunctionTool(RESPONSE_FORMAT_TOOL, description, schema)
