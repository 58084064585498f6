"""OpenAI chat-completions request → Anthropic Messages request (see anthropic_translate)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from router.dispatch.providers.anthropic_common import (
    DATA_URL,
    IMAGE_MEDIA_TYPES,
    RESPONSE_FORMAT_TOOL,
    fail,
    want_bool,
    want_int,
    want_list,
    want_mapping,
    want_number,
    want_str,
)
from router.dispatch.providers.openai_request import (
    FunctionTool,
    arguments,
    function_tools,
    refuse_unsupported,
    response_format_tool,
    system_text,
)

TARGET = "anthropic"

# ---------------------------------------------------------------------------------------------
# requests


def to_anthropic(
    body: Mapping[str, Any], api_model: str, default_max_tokens: int
) -> dict[str, Any]:
    """An OpenAI chat-completions request body → an Anthropic Messages request body."""
    body = want_mapping(body, "")
    refuse_unsupported(body, TARGET)
    system, messages = _messages(body.get("messages"))
    out: dict[str, Any] = {"model": api_model, "max_tokens": _max_tokens(body, default_max_tokens)}
    if system:
        out["system"] = system
    out["messages"] = messages
    if body.get("temperature") is not None:
        out["temperature"] = min(want_number(body["temperature"], "/temperature"), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = want_number(body["top_p"], "/top_p")
    stop = _stop(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop
    if body.get("stream") is not None:
        out["stream"] = want_bool(body["stream"], "/stream")
    user_id = _user_id(body)
    if user_id is not None:
        out["metadata"] = {"user_id": user_id}
    out.update(_tooling(body))
    return out


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            return want_int(body[key], f"/{key}", 1)
    return default


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [want_str(s, f"/stop/{i}") for i, s in enumerate(want_list(value, "/stop"))]


def _user_id(body: Mapping[str, Any]) -> str | None:
    metadata = body.get("metadata")
    if metadata is not None and want_mapping(metadata, "/metadata").get("user_id") is not None:
        return want_str(metadata["user_id"], "/metadata/user_id")
    for key in ("safety_identifier", "user"):
        if body.get(key) is not None:
            return want_str(body[key], f"/{key}")
    return None


@dataclass
class _Turn:
    role: Literal["user", "assistant"]
    first: int  # index of the first OpenAI message merged into this turn
    blocks: list[dict[str, Any]] = field(default_factory=list)


def _messages(value: Any) -> tuple[str, list[dict[str, Any]]]:
    if value is None:
        fail("/messages", "is required")
    system: list[str] = []
    turns: list[_Turn] = []
    for i, raw in enumerate(want_list(value, "/messages")):
        pointer = f"/messages/{i}"
        message = want_mapping(raw, pointer)
        role = message.get("role")
        blocks: list[dict[str, Any]]
        if role in ("system", "developer"):
            text = system_text(message.get("content"), f"{pointer}/content")
            if text:
                system.append(text)
            continue
        if role == "user":
            turn_role: Literal["user", "assistant"] = "user"
            blocks = _content_blocks(message.get("content"), f"{pointer}/content", images=True)
        elif role == "assistant":
            turn_role = "assistant"
            blocks = _assistant_blocks(message, pointer)
        elif role == "tool":
            turn_role = "user"
            blocks = [_tool_result(message, pointer)]
        elif role == "function":
            fail(f"{pointer}/role", "legacy `function` messages are not supported; use `tool`")
        else:
            fail(f"{pointer}/role", f"unknown role `{role}`")
        if turns and turns[-1].role == turn_role:
            turns[-1].blocks.extend(blocks)
        else:
            turns.append(_Turn(turn_role, i, blocks))
    messages: list[dict[str, Any]] = []
    for turn in turns:
        blocks = turn.blocks
        if turn.role == "user":  # tool results must open a user turn
            blocks = [b for b in blocks if b["type"] == "tool_result"] + [
                b for b in blocks if b["type"] != "tool_result"
            ]
        if not blocks:
            fail(f"/messages/{turn.first}/content", "message has no content")
        messages.append({"role": turn.role, "content": blocks})
    if not messages:
        fail("/messages", "needs at least one user or assistant message")
    return "\n\n".join(system), messages


def _text_block(text: str, part: Mapping[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if part is not None and isinstance(part.get("cache_control"), Mapping):
        block["cache_control"] = dict(part["cache_control"])
    return block


def _content_blocks(content: Any, pointer: str, *, images: bool) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    blocks: list[dict[str, Any]] = []
    for j, raw in enumerate(want_list(content, pointer)):
        part = want_mapping(raw, f"{pointer}/{j}")
        kind = part.get("type")
        if kind == "text" or (kind == "refusal" and not images):
            key = "text" if kind == "text" else "refusal"
            text = want_str(part.get(key), f"{pointer}/{j}/{key}")
            if text:
                blocks.append(_text_block(text, part))
        elif kind == "image_url" and images:
            blocks.append(_image_block(part, f"{pointer}/{j}"))
        else:
            where = "user" if images else "assistant"
            fail(f"{pointer}/{j}/type", f"`{kind}` parts are not supported in {where} content")
    return blocks


def _image_block(part: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    image = part.get("image_url")
    if isinstance(image, str):
        url, url_pointer = image, f"{pointer}/image_url"
    else:
        url = want_str(want_mapping(image, f"{pointer}/image_url").get("url"),
                       f"{pointer}/image_url/url")
        url_pointer = f"{pointer}/image_url/url"
    source: dict[str, Any]
    if url.startswith(("https://", "http://")):
        source = {"type": "url", "url": url}
    else:
        match = DATA_URL.fullmatch(url)
        if match is None:
            fail(url_pointer, "image url must be an http(s) url or a base64 data url")
        media_type = match["type"].strip().lower()
        if "base64" not in (p.strip().lower() for p in match["params"].split(";")):
            fail(url_pointer, "image data url must be base64-encoded")
        if media_type not in IMAGE_MEDIA_TYPES:
            fail(url_pointer, f"image type `{media_type}` is not supported by anthropic")
        source = {"type": "base64", "media_type": media_type, "data": match["data"]}
    block: dict[str, Any] = {"type": "image", "source": source}
    if isinstance(part.get("cache_control"), Mapping):
        block["cache_control"] = dict(part["cache_control"])
    return block


def _assistant_blocks(message: Mapping[str, Any], pointer: str) -> list[dict[str, Any]]:
    if message.get("function_call") is not None:
        fail(f"{pointer}/function_call", "legacy function calling is not supported; use `tools`")
    blocks = _content_blocks(message.get("content"), f"{pointer}/content", images=False)
    calls = message.get("tool_calls")
    if calls is None:
        return blocks
    for k, raw in enumerate(want_list(calls, f"{pointer}/tool_calls")):
        cp = f"{pointer}/tool_calls/{k}"
        call = want_mapping(raw, cp)
        if call.get("type", "function") != "function":
            fail(f"{cp}/type", f"tool call type `{call.get('type')}` is not supported")
        function = want_mapping(call.get("function"), f"{cp}/function")
        blocks.append({
            "type": "tool_use",
            "id": want_str(call.get("id"), f"{cp}/id"),
            "name": want_str(function.get("name"), f"{cp}/function/name"),
            "input": arguments(function.get("arguments"), f"{cp}/function/arguments"),
        })
    return blocks


def _tool_result(message: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": want_str(message.get("tool_call_id"), f"{pointer}/tool_call_id"),
    }
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        parts = _content_blocks(content, f"{pointer}/content", images=False)
        if parts:
            block["content"] = parts
    return block


def _tooling(body: Mapping[str, Any]) -> dict[str, Any]:
    """`tools` and `tool_choice`, with `response_format` and `parallel_tool_calls` folded in."""
    raw_tools = body.get("tools")
    tools = [] if raw_tools is None else [_tool(t) for t in function_tools(raw_tools, TARGET)]
    choice = None if body.get("tool_choice") is None else _tool_choice(body["tool_choice"])
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        want_bool(parallel, "/parallel_tool_calls")
    emulated = response_format_tool(body.get("response_format"), TARGET)
    if emulated is not None:
        format_tool = _tool(emulated)
        kind = "auto" if choice is None else choice["type"]
        if kind == "auto" and tools:
            choice = {"type": "any"}
            tools.append(format_tool)
        elif kind in ("auto", "none"):
            choice = {"type": "tool", "name": RESPONSE_FORMAT_TOOL}
            tools.append(format_tool)
    if not tools:
        if choice is not None and choice["type"] != "none":
            fail("/tool_choice", "`tool_choice` needs `tools`")
        return {}
    if parallel is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    out: dict[str, Any] = {"tools": tools}
    if choice is not None:
        out["tool_choice"] = choice
    return out


def _tool(tool: FunctionTool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["input_schema"] = tool.schema
    return out


def _tool_choice(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        named = {"auto": "auto", "required": "any", "none": "none"}.get(value)
        if named is None:
            fail("/tool_choice", f"unknown tool_choice `{value}`")
        return {"type": named}
    choice = want_mapping(value, "/tool_choice")
    if choice.get("type") != "function":
        fail("/tool_choice/type", f"tool_choice type `{choice.get('type')}` is not supported")
    function = want_mapping(choice.get("function"), "/tool_choice/function")
    return {"type": "tool", "name": want_str(function.get("name"), "/tool_choice/function/name")}

