"""OpenAI chat completions ⇄ Anthropic Messages, as pure functions (no I/O).

`to_anthropic` turns an OpenAI chat-completions request body into an Anthropic Messages request
body; `from_anthropic` turns an Anthropic Message into an OpenAI `chat.completion`;
`AnthropicStreamTranslator` turns Anthropic stream events into `chat.completion.chunk`s.
Anything that cannot be translated raises `TranslationError`, whose `pointer` (RFC 6901) points
into the request (for `to_anthropic`), the response (for `from_anthropic`) or the event's data
(for the stream translator).

Requests
--------
- `system` and `developer` messages, wherever they appear, are hoisted into the top-level
  `system` string: text parts of one message are joined with `\\n`, messages with `\\n\\n`.
- User content: text parts → text blocks; `image_url` parts → image blocks (`data:` URLs with
  `;base64` → a base64 source of type image/jpeg, png, gif or webp; `http(s)` URLs → a url
  source; `detail` is dropped). A `cache_control` object on a text or image part is passed on.
  Audio and file parts are refused.
- Assistant `tool_calls` → `tool_use` blocks after the assistant's text (arguments must be a
  JSON object; an empty string counts as `{}`); `tool` messages → `tool_result` blocks in a
  user turn. Consecutive turns of one role are merged (Anthropic requires alternation) and in a
  merged user turn the `tool_result` blocks go first, as Anthropic requires. Empty text is
  dropped; a turn left with no content is refused. Message `name` fields are dropped.
- `max_completion_tokens` (preferred) or `max_tokens` → `max_tokens`, else the default.
- `temperature` is clamped to Anthropic's 0–1 range (OpenAI allows up to 2); `top_p` is copied;
  `stop` → `stop_sequences`; `stream` is copied; `metadata.user_id`, else `safety_identifier`,
  else `user` → `metadata.user_id`.
- `tools` → `{name, description, input_schema}` (`strict` dropped); `tool_choice` auto → auto,
  required → any, none → none, a named function → tool; `parallel_tool_calls: false` →
  `disable_parallel_tool_use: true`. Without tools, `tool_choice: "none"` and
  `parallel_tool_calls` are dropped and any other `tool_choice` is refused.
- `response_format` (`json_schema`, `json_object`) is emulated with a forced tool named
  `RESPONSE_FORMAT_TOOL` whose `input_schema` is the schema (`{"type": "object"}` for
  json_object); `text` is a no-op. Without tools (or with `tool_choice: "none"`) that tool is
  forced; with tools and `tool_choice` auto, `tool_choice` becomes `any` (call one of the tools,
  or answer through the format tool); with `required` or a named function the answer is a tool
  call anyway, so no format tool is added. On the way back the format tool's input is the
  message *content* (a JSON string), never a tool call, and a `tool_use` stop with no other
  tool call finishes as `stop`. That name is reserved: a request tool with it is refused.
- Refused, since dropping them would change what the caller gets: `n` > 1, `logprobs: true`,
  `top_logprobs` > 0, audio output (`audio`, `modalities` with audio), `web_search_options`,
  and legacy `functions`/`function_call`/`function` messages.
- Dropped silently (Anthropic has no equivalent and the answer keeps its meaning):
  `presence_penalty`, `frequency_penalty`, `seed`, `logit_bias`, `service_tier`, `store`,
  `prediction`, `reasoning_effort`, `verbosity`, `prompt_cache_key`, `stream_options` (usage is
  always available from Anthropic; the stream translator's `include_usage` decides), other
  `metadata` keys, and any field not named here. `model` becomes the given `api_model`.

Responses
---------
- Text blocks are concatenated into `message.content` (`None` when there are tool calls and no
  text, `""` when there is nothing); `tool_use` blocks → `message.tool_calls`.
- `thinking` and `redacted_thinking` blocks are ignored (requests never enable thinking, and an
  OpenAI message cannot carry the signature a later turn would need), as are other block types
  (server tools, citations).
- stop_reason: end_turn, stop_sequence, pause_turn → stop; max_tokens and
  model_context_window_exceeded → length; tool_use → tool_calls; refusal → content_filter;
  anything else → stop.
- usage: prompt = input + cache read + cache creation tokens; `prompt_tokens_details.
  cached_tokens` = cache read tokens. A response without usage gets no `usage` key (never
  invented zeros). In a stream the usage chunk (when `include_usage`) is left out likewise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

__all__ = [
    "RESPONSE_FORMAT_TOOL",
    "AnthropicStreamTranslator",
    "StreamError",
    "TranslationError",
    "from_anthropic",
    "to_anthropic",
]

RESPONSE_FORMAT_TOOL = "unhardcoded_json_response"

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_DATA_URL = re.compile(r"data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.DOTALL)
_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


class TranslationError(Exception):
    """A body that cannot be translated; `pointer` is an RFC 6901 pointer into it."""

    def __init__(self, pointer: str, message: str) -> None:
        self.pointer = pointer
        self.message = message
        super().__init__(f"{message} (at {pointer or '/'})")


class StreamError(Exception):
    """An `error` event in an Anthropic stream (e.g. `overloaded_error`)."""

    def __init__(self, type: str, message: str) -> None:
        self.type = type
        self.message = message
        super().__init__(f"{type}: {message}")


# ---------------------------------------------------------------------------------------------
# small typed readers


def _fail(pointer: str, message: str) -> NoReturn:
    raise TranslationError(pointer, message)


def _mapping(value: Any, pointer: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(pointer, "must be an object")
    return value


def _list(value: Any, pointer: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        _fail(pointer, "must be an array")
    return value


def _str(value: Any, pointer: str) -> str:
    if not isinstance(value, str):
        _fail(pointer, "must be a string")
    return value


def _int(value: Any, pointer: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(pointer, f"must be an integer ≥ {minimum}")
    return value


def _number(value: Any, pointer: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(pointer, "must be a number")
    return value


def _bool(value: Any, pointer: str) -> bool:
    if not isinstance(value, bool):
        _fail(pointer, "must be a boolean")
    return value


# ---------------------------------------------------------------------------------------------
# requests


def to_anthropic(
    body: Mapping[str, Any], api_model: str, default_max_tokens: int
) -> dict[str, Any]:
    """An OpenAI chat-completions request body → an Anthropic Messages request body."""
    body = _mapping(body, "")
    _refuse_unsupported(body)
    system, messages = _messages(body.get("messages"))
    out: dict[str, Any] = {"model": api_model, "max_tokens": _max_tokens(body, default_max_tokens)}
    if system:
        out["system"] = system
    out["messages"] = messages
    if body.get("temperature") is not None:
        out["temperature"] = min(_number(body["temperature"], "/temperature"), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = _number(body["top_p"], "/top_p")
    stop = _stop(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop
    if body.get("stream") is not None:
        out["stream"] = _bool(body["stream"], "/stream")
    user_id = _user_id(body)
    if user_id is not None:
        out["metadata"] = {"user_id": user_id}
    out.update(_tooling(body))
    return out


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    n = body.get("n")
    if n is not None and _int(n, "/n", 1) > 1:
        _fail("/n", "anthropic returns one choice; `n` > 1 is not supported")
    if body.get("logprobs") is not None and _bool(body["logprobs"], "/logprobs"):
        _fail("/logprobs", "anthropic does not return log probabilities")
    if body.get("top_logprobs") is not None and _int(body["top_logprobs"], "/top_logprobs"):
        _fail("/top_logprobs", "anthropic does not return log probabilities")
    if body.get("audio") is not None:
        _fail("/audio", "anthropic does not produce audio")
    modalities = body.get("modalities")
    if modalities is not None and "audio" in _list(modalities, "/modalities"):
        _fail("/modalities", "anthropic does not produce audio")
    if body.get("web_search_options") is not None:
        _fail("/web_search_options", "web search is not supported for anthropic")
    for legacy in ("functions", "function_call"):
        if body.get(legacy) is not None:
            _fail(f"/{legacy}", "legacy function calling is not supported; use `tools`")


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            return _int(body[key], f"/{key}", 1)
    return default


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [_str(s, f"/stop/{i}") for i, s in enumerate(_list(value, "/stop"))]


def _user_id(body: Mapping[str, Any]) -> str | None:
    metadata = body.get("metadata")
    if metadata is not None and _mapping(metadata, "/metadata").get("user_id") is not None:
        return _str(metadata["user_id"], "/metadata/user_id")
    for key in ("safety_identifier", "user"):
        if body.get(key) is not None:
            return _str(body[key], f"/{key}")
    return None


@dataclass
class _Turn:
    role: Literal["user", "assistant"]
    first: int  # index of the first OpenAI message merged into this turn
    blocks: list[dict[str, Any]] = field(default_factory=list)


def _messages(value: Any) -> tuple[str, list[dict[str, Any]]]:
    if value is None:
        _fail("/messages", "is required")
    system: list[str] = []
    turns: list[_Turn] = []
    for i, raw in enumerate(_list(value, "/messages")):
        pointer = f"/messages/{i}"
        message = _mapping(raw, pointer)
        role = message.get("role")
        blocks: list[dict[str, Any]]
        if role in ("system", "developer"):
            text = _system_text(message.get("content"), f"{pointer}/content")
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
            _fail(f"{pointer}/role", "legacy `function` messages are not supported; use `tool`")
        else:
            _fail(f"{pointer}/role", f"unknown role `{role}`")
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
            _fail(f"/messages/{turn.first}/content", "message has no content")
        messages.append({"role": turn.role, "content": blocks})
    if not messages:
        _fail("/messages", "needs at least one user or assistant message")
    return "\n\n".join(system), messages


def _system_text(content: Any, pointer: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for j, raw in enumerate(_list(content, pointer)):
        part = _mapping(raw, f"{pointer}/{j}")
        if part.get("type") != "text":
            _fail(f"{pointer}/{j}/type", "system content may only hold text parts")
        texts.append(_str(part.get("text"), f"{pointer}/{j}/text"))
    return "\n".join(t for t in texts if t)


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
    for j, raw in enumerate(_list(content, pointer)):
        part = _mapping(raw, f"{pointer}/{j}")
        kind = part.get("type")
        if kind == "text" or (kind == "refusal" and not images):
            key = "text" if kind == "text" else "refusal"
            text = _str(part.get(key), f"{pointer}/{j}/{key}")
            if text:
                blocks.append(_text_block(text, part))
        elif kind == "image_url" and images:
            blocks.append(_image_block(part, f"{pointer}/{j}"))
        else:
            where = "user" if images else "assistant"
            _fail(f"{pointer}/{j}/type", f"`{kind}` parts are not supported in {where} content")
    return blocks


def _image_block(part: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    image = part.get("image_url")
    if isinstance(image, str):
        url, url_pointer = image, f"{pointer}/image_url"
    else:
        url = _str(_mapping(image, f"{pointer}/image_url").get("url"), f"{pointer}/image_url/url")
        url_pointer = f"{pointer}/image_url/url"
    source: dict[str, Any]
    if url.startswith(("https://", "http://")):
        source = {"type": "url", "url": url}
    else:
        match = _DATA_URL.fullmatch(url)
        if match is None:
            _fail(url_pointer, "image url must be an http(s) url or a base64 data url")
        media_type = match["type"].strip().lower()
        if "base64" not in (p.strip().lower() for p in match["params"].split(";")):
            _fail(url_pointer, "image data url must be base64-encoded")
        if media_type not in IMAGE_MEDIA_TYPES:
            _fail(url_pointer, f"image type `{media_type}` is not supported by anthropic")
        source = {"type": "base64", "media_type": media_type, "data": match["data"]}
    block: dict[str, Any] = {"type": "image", "source": source}
    if isinstance(part.get("cache_control"), Mapping):
        block["cache_control"] = dict(part["cache_control"])
    return block


def _assistant_blocks(message: Mapping[str, Any], pointer: str) -> list[dict[str, Any]]:
    if message.get("function_call") is not None:
        _fail(f"{pointer}/function_call", "legacy function calling is not supported; use `tools`")
    blocks = _content_blocks(message.get("content"), f"{pointer}/content", images=False)
    calls = message.get("tool_calls")
    if calls is None:
        return blocks
    for k, raw in enumerate(_list(calls, f"{pointer}/tool_calls")):
        cp = f"{pointer}/tool_calls/{k}"
        call = _mapping(raw, cp)
        if call.get("type", "function") != "function":
            _fail(f"{cp}/type", f"tool call type `{call.get('type')}` is not supported")
        function = _mapping(call.get("function"), f"{cp}/function")
        blocks.append({
            "type": "tool_use",
            "id": _str(call.get("id"), f"{cp}/id"),
            "name": _str(function.get("name"), f"{cp}/function/name"),
            "input": _arguments(function.get("arguments"), f"{cp}/function/arguments"),
        })
    return blocks


def _arguments(value: Any, pointer: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    text = _str(value, pointer)
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        _fail(pointer, f"tool call arguments are not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        _fail(pointer, "tool call arguments must be a JSON object")
    return parsed


def _tool_result(message: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": _str(message.get("tool_call_id"), f"{pointer}/tool_call_id"),
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
    tools = [] if raw_tools is None else _tools(raw_tools)
    choice = None if body.get("tool_choice") is None else _tool_choice(body["tool_choice"])
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        _bool(parallel, "/parallel_tool_calls")
    format_tool = _response_format_tool(body.get("response_format"))
    if format_tool is not None:
        kind = "auto" if choice is None else choice["type"]
        if kind == "auto" and tools:
            choice = {"type": "any"}
            tools.append(format_tool)
        elif kind in ("auto", "none"):
            choice = {"type": "tool", "name": RESPONSE_FORMAT_TOOL}
            tools.append(format_tool)
    if not tools:
        if choice is not None and choice["type"] != "none":
            _fail("/tool_choice", "`tool_choice` needs `tools`")
        return {}
    if parallel is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    out: dict[str, Any] = {"tools": tools}
    if choice is not None:
        out["tool_choice"] = choice
    return out


def _tools(value: Any) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for j, raw in enumerate(_list(value, "/tools")):
        pointer = f"/tools/{j}"
        tool = _mapping(raw, pointer)
        if tool.get("type", "function") != "function":
            _fail(f"{pointer}/type", f"tool type `{tool.get('type')}` is not supported")
        function = _mapping(tool.get("function"), f"{pointer}/function")
        name = _str(function.get("name"), f"{pointer}/function/name")
        if name == RESPONSE_FORMAT_TOOL:
            _fail(f"{pointer}/function/name", f"tool name `{name}` is reserved")
        out: dict[str, Any] = {"name": name}
        if function.get("description") is not None:
            out["description"] = _str(function["description"], f"{pointer}/function/description")
        out["input_schema"] = _object_schema(
            function.get("parameters"), f"{pointer}/function/parameters"
        )
        tools.append(out)
    return tools


def _object_schema(value: Any, pointer: str) -> dict[str, Any]:
    if value is None:
        return {"type": "object", "properties": {}}
    schema = dict(_mapping(value, pointer))
    schema.setdefault("type", "object")
    if schema["type"] != "object":
        _fail(f"{pointer}/type", "anthropic needs an object schema (`type: object`)")
    return schema


def _tool_choice(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        named = {"auto": "auto", "required": "any", "none": "none"}.get(value)
        if named is None:
            _fail("/tool_choice", f"unknown tool_choice `{value}`")
        return {"type": named}
    choice = _mapping(value, "/tool_choice")
    if choice.get("type") != "function":
        _fail("/tool_choice/type", f"tool_choice type `{choice.get('type')}` is not supported")
    function = _mapping(choice.get("function"), "/tool_choice/function")
    return {"type": "tool", "name": _str(function.get("name"), "/tool_choice/function/name")}


def _response_format_tool(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    fmt = _mapping(value, "/response_format")
    kind = fmt.get("type")
    description = "Give your complete answer to the user by calling this tool."
    if kind == "text":
        return None
    if kind == "json_object":
        schema: dict[str, Any] = {"type": "object"}
        description += " Its input is the answer, as a JSON object."
    elif kind == "json_schema":
        spec = _mapping(fmt.get("json_schema"), "/response_format/json_schema")
        schema = _object_schema(spec.get("schema"), "/response_format/json_schema/schema")
        description += " Its input is the answer, as JSON following the schema."
        if spec.get("description") is not None:
            extra = _str(spec["description"], "/response_format/json_schema/description")
            description += f" {extra}"
    else:
        _fail("/response_format/type", f"response_format type `{kind}` is not supported")
    return {"name": RESPONSE_FORMAT_TOOL, "description": description, "input_schema": schema}


# ---------------------------------------------------------------------------------------------
# responses


def _finish_reason(stop_reason: str | None, has_tool_calls: bool) -> str:
    if stop_reason == "tool_use" and not has_tool_calls:
        return "stop"  # only the response-format tool (or server tools) were used
    return FINISH_REASONS.get(stop_reason or "", "stop")


def _openai_usage(raw: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    counts = {}
    for key in _USAGE_KEYS:
        value = raw.get(key)
        if value is None and key.startswith("cache_"):
            value = 0
        counts[key] = _int(value, f"{pointer}/{key}")
    cached = counts["cache_read_input_tokens"]
    prompt = counts["input_tokens"] + cached + counts["cache_creation_input_tokens"]
    completion = counts["output_tokens"]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def from_anthropic(resp: Mapping[str, Any], model: str, created: int) -> dict[str, Any]:
    """An Anthropic Message → an OpenAI `chat.completion` object."""
    resp = _mapping(resp, "")
    message_id = _str(resp.get("id"), "/id")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for i, raw in enumerate(_list(resp.get("content"), "/content")):
        pointer = f"/content/{i}"
        block = _mapping(raw, pointer)
        kind = _str(block.get("type"), f"{pointer}/type")
        if kind == "text":
            texts.append(_str(block.get("text"), f"{pointer}/text"))
        elif kind == "tool_use":
            call_id = _str(block.get("id"), f"{pointer}/id")
            name = _str(block.get("name"), f"{pointer}/name")
            arguments = json.dumps(_mapping(block.get("input"), f"{pointer}/input"),
                                   ensure_ascii=False)
            if name == RESPONSE_FORMAT_TOOL:
                texts.append(arguments)
            else:
                tool_calls.append({"id": call_id, "type": "function",
                                   "function": {"name": name, "arguments": arguments}})
    stop_reason = resp.get("stop_reason")
    if stop_reason is not None:
        _str(stop_reason, "/stop_reason")
    joined = "".join(texts)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": joined if joined or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    out: dict[str, Any] = {
        "id": message_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": _finish_reason(stop_reason, bool(tool_calls)),
        }],
    }
    if resp.get("usage") is not None:
        out["usage"] = _openai_usage(_mapping(resp["usage"], "/usage"), "/usage")
    return out


# ---------------------------------------------------------------------------------------------
# streams

_BlockKind = Literal["text", "tool", "format", "other"]
_STREAM_EVENTS = frozenset({
    "content_block_start", "content_block_delta", "content_block_stop",
    "message_delta", "message_stop",
})


class AnthropicStreamTranslator:
    """Anthropic stream events → OpenAI `chat.completion.chunk` dicts, one event at a time.

    `feed(event, data)` takes the SSE event name and its parsed JSON data (when the name is
    empty or `message`, the data's `type` is used). Malformed events raise `TranslationError`
    (pointer into the event data); an `error` event raises `StreamError`. With `include_usage`
    every chunk carries `usage: None` and `message_stop` adds a last chunk with `choices: []`
    and the usage — unless Anthropic reported none, in which case that chunk is left out.
    """

    def __init__(self, model: str, created: int, include_usage: bool) -> None:
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self._id: str | None = None
        self._blocks: dict[int, _BlockKind] = {}
        self._tool_index: dict[int, int] = {}  # content block index → OpenAI tool call index
        self._stop_reason: str | None = None
        self._usage: dict[str, int] = {}
        self._finished = False

    @property
    def id(self) -> str | None:
        """The message id, once `message_start` arrived."""
        return self._id

    @property
    def finished(self) -> bool:
        """True once `message_stop` was translated."""
        return self._finished

    def usage(self) -> dict[str, Any] | None:
        """The usage so far in OpenAI form; None until input and output counts are known."""
        if "input_tokens" not in self._usage or "output_tokens" not in self._usage:
            return None
        return _openai_usage(self._usage, "/usage")

    def feed(self, event: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        data = _mapping(data, "")
        kind = event if event and event != "message" else data.get("type")
        if kind == "error":
            error = data.get("error")
            error = error if isinstance(error, Mapping) else {}
            raise StreamError(str(error.get("type") or "error"), str(error.get("message") or ""))
        if kind == "message_start":
            return self._message_start(data)
        if kind not in _STREAM_EVENTS:
            return []  # pings, and event types added later (Anthropic's versioning policy)
        if self._id is None:
            _fail("/type", f"`{kind}` before `message_start`")
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            delta = data.get("delta")
            if delta is not None:
                stop_reason = _mapping(delta, "/delta").get("stop_reason")
                if stop_reason is not None:
                    self._stop_reason = _str(stop_reason, "/delta/stop_reason")
            self._add_usage(data.get("usage"), "/usage")
            return []
        if kind == "message_stop":
            return self._message_stop()
        return []  # content_block_stop

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _add_usage(self, usage: Any, pointer: str) -> None:
        if usage is None:
            return
        usage = _mapping(usage, pointer)
        for key in _USAGE_KEYS:  # counts are cumulative: the latest value wins
            if usage.get(key) is not None:
                self._usage[key] = _int(usage[key], f"{pointer}/{key}")

    def _message_start(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._id is not None:
            _fail("/type", "second `message_start`")
        message = _mapping(data.get("message"), "/message")
        self._id = _str(message.get("id"), "/message/id")
        self._add_usage(message.get("usage"), "/message/usage")
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        index = _int(data.get("index"), "/index")
        if index in self._blocks:
            _fail("/index", f"content block {index} started twice")
        block = _mapping(data.get("content_block"), "/content_block")
        kind = _str(block.get("type"), "/content_block/type")
        if kind == "text":
            self._blocks[index] = "text"
            text = block.get("text")
            if text is not None and _str(text, "/content_block/text"):
                return [self._chunk({"content": text})]
            return []
        if kind != "tool_use":
            self._blocks[index] = "other"  # thinking, server tools, …: not surfaced
            return []
        call_id = _str(block.get("id"), "/content_block/id")
        name = _str(block.get("name"), "/content_block/name")
        initial = block.get("input")
        arguments = json.dumps(initial, ensure_ascii=False) if initial else ""
        if name == RESPONSE_FORMAT_TOOL:
            self._blocks[index] = "format"
            return [self._chunk({"content": arguments})] if arguments else []
        self._blocks[index] = "tool"
        position = self._tool_index[index] = len(self._tool_index)
        call = {"index": position, "id": call_id, "type": "function",
                "function": {"name": name, "arguments": arguments}}
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        index = _int(data.get("index"), "/index")
        block = self._blocks.get(index)
        if block is None:
            _fail("/index", f"delta for content block {index}, which never started")
        delta = _mapping(data.get("delta"), "/delta")
        kind = _str(delta.get("type"), "/delta/type")
        if kind == "text_delta":
            if block != "text":
                _fail("/delta/type", f"text delta for a {block} block")
            text = _str(delta.get("text"), "/delta/text")
            return [self._chunk({"content": text})] if text else []
        if kind == "input_json_delta" and block != "other":
            if block == "text":
                _fail("/delta/type", "input_json delta for a text block")
            partial = _str(delta.get("partial_json"), "/delta/partial_json")
            if not partial:
                return []
            if block == "format":
                return [self._chunk({"content": partial})]
            call = {"index": self._tool_index[index], "function": {"arguments": partial}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # thinking, signature and citation deltas are not surfaced

    def _message_stop(self) -> list[dict[str, Any]]:
        if self._finished:
            return []
        self._finished = True
        finish = _finish_reason(self._stop_reason, bool(self._tool_index))
        chunks = [self._chunk({}, finish)]
        usage = self.usage()
        if self.include_usage and usage is not None:
            chunks.append({
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage,
            })
        return chunks
