"""OpenAI chat completions ⇄ AWS Bedrock Converse / ConverseStream, as pure functions (no I/O).

`to_converse` turns an OpenAI chat-completions request body into a Converse request body (the
model id goes into the URL, not the body); `from_converse` turns a Converse response into an
OpenAI `chat.completion`; `ConverseStreamTranslator` turns ConverseStream events (already decoded
from the event stream) into `chat.completion.chunk`s; `stream_exception` turns an in-stream
exception frame into a `StreamError`. Anything that cannot be translated raises
`TranslationError`, whose `pointer` (RFC 6901) points into the request (for `to_converse`), the
response (for `from_converse`) or the event's payload (for the stream translator). The rules
mirror the Anthropic translator (`anthropic_translate`); the differences are spelled out below.

Requests
--------
- `system` and `developer` messages, wherever they appear, are hoisted into one top-level
  `system: [{"text": ...}]` block: text parts of one message are joined with `\\n`, messages
  with `\\n\\n`. No system text → no `system` key.
- User content: text parts → `{"text"}` blocks; `image_url` parts with a base64 `data:` URL of
  type image/png, jpeg, gif or webp → `{"image": {"format", "source": {"bytes": <base64>}}}`
  (`detail` is dropped). `http(s)` image URLs are refused: Converse takes image bytes or S3
  locations only, and fetching is I/O. A `cache_control` object on a text or image part becomes
  a `{"cachePoint": {"type": "default"}}` block right after it (its `ttl` is dropped). Audio and
  file parts are refused.
- Assistant `tool_calls` → `{"toolUse": {toolUseId, name, input}}` blocks after the assistant's
  text (arguments must be a JSON object; an empty string counts as `{}`); `tool` messages →
  `{"toolResult": {toolUseId, content: [{"text"}...]}}` blocks in a user turn (a result with no
  text gets `content: []`; Anthropic models accept that, some others on Bedrock do not).
  Consecutive turns of one role are merged (Converse requires alternation, and every result of
  one assistant turn in the next user turn) and in a merged user turn the `toolResult` blocks go
  first. Empty text is dropped (Converse refuses blank text blocks); a turn left with no content
  is refused. Message `name` fields are dropped.
- `inferenceConfig`: `maxTokens` from `max_completion_tokens` (preferred) or `max_tokens`, else
  `default_max_tokens` when given, else omitted (Bedrock then uses the model's maximum);
  `temperature` clamped to Converse's 0–1 range (OpenAI allows up to 2); `topP` copied;
  `stopSequences` from `stop` (a string or a list; empty strings dropped, Converse needs length
  ≥ 1). No such field → no `inferenceConfig` key.
- `tools` → `toolConfig.tools: [{"toolSpec": {name, description, inputSchema: {"json": ...}}}]`
  (`strict` and an empty description dropped; the schema must be an object schema).
  `tool_choice` auto → `{"auto": {}}`, required → `{"any": {}}`, a named function →
  `{"tool": {"name"}}`; not given → no `toolChoice` (the model's default, auto). Converse has no
  "none": `tool_choice: "none"` drops `toolConfig` entirely. Without tools, `tool_choice: "none"`
  is dropped and any other `tool_choice` is refused.
- Converse refuses a request whose messages hold `toolUse`/`toolResult` blocks without a
  `toolConfig`, so such a conversation is refused when it has no `tools` (pointer: the first
  message with a tool call or result) or when `tool_choice: "none"` would drop them (pointer:
  `/tool_choice`) — no way to forbid tool calls there without changing the answer.
- `parallel_tool_calls` is checked to be a boolean and dropped: Converse has no switch for it,
  so the model may still answer with several calls.
- `response_format` (`json_schema`, `json_object`) is emulated exactly as for Anthropic, with a
  forced tool named `RESPONSE_FORMAT_TOOL` whose input schema is the schema (`{"type":
  "object"}` for json_object); `text` is a no-op. Without tools (or with `tool_choice: "none"`)
  that tool is forced (`{"tool": {"name": RESPONSE_FORMAT_TOOL}}`, the other tools kept but not
  callable); with tools and `tool_choice` auto (or none given) the choice becomes `{"any": {}}`
  (call one of the tools, or answer through the format tool); with `required` or a named
  function the answer is a tool call anyway, so no format tool is added. On the way back the
  format tool's input is the message *content* (a JSON string), never a tool call, and a
  `tool_use` stop with no other tool call finishes as `stop`. That name is reserved: a request
  tool with it is refused.
- Refused, since dropping them would change what the caller gets: `n` > 1, `logprobs: true`,
  `top_logprobs` > 0, audio output (`audio`, `modalities` with audio), `web_search_options`,
  and legacy `functions`/`function_call`/`function` messages.
- Dropped silently (Converse has no equivalent and the answer keeps its meaning):
  `presence_penalty`, `frequency_penalty`, `seed`, `logit_bias`, `service_tier`, `store`,
  `prediction`, `reasoning_effort`, `verbosity`, `prompt_cache_key`, `stream_options` (the
  stream translator's `include_usage` decides), `metadata`, `user`, `safety_identifier`,
  `stream` (checked to be a boolean: streaming is a different operation, ConverseStream, not a
  body field), `model`, and any field not named here.

Responses
---------
- `output.message.content`: text blocks are concatenated into `message.content` (`None` when
  there are tool calls and no text, `""` when there is nothing); `toolUse` blocks →
  `message.tool_calls`. `reasoningContent` blocks are ignored (an OpenAI message cannot carry
  the signature a later turn would need), as are other block types (images, citations, …).
- `id` is the given `response_id` (a Converse response has none of its own).
- stopReason: end_turn, stop_sequence → stop; max_tokens, model_context_window_exceeded →
  length; tool_use → tool_calls; guardrail_intervened, content_filtered → content_filter;
  anything else (e.g. malformed_model_output) or none → stop.
- usage: Bedrock reports cache tokens apart from `inputTokens` (its prompt-caching guide: with
  caching, `inputTokens` counts only the non-cached input, and the total input is `inputTokens
  + cacheReadInputTokens + cacheWriteInputTokens`, as Anthropic's usage does), so prompt_tokens
  = inputTokens + cacheReadInputTokens + cacheWriteInputTokens and total_tokens = prompt +
  outputTokens (Bedrock's `totalTokens` is not used); `prompt_tokens_details.cached_tokens` =
  cacheReadInputTokens, written only when Bedrock reported it (never an invented zero). A
  response without usage gets no `usage` key.

Streams
-------
- `messageStart` → the first chunk (`role: assistant`, `content: ""`); text deltas → content
  deltas (Converse sends no `contentBlockStart` for text, so a text delta opens its block);
  `contentBlockStart` with `toolUse` → a tool-call chunk (OpenAI index, id, name, empty
  arguments), its `toolUse.input` deltas → argument fragments; the format tool's fragments are
  content deltas instead. `reasoningContent` deltas and unknown event types give nothing.
- `messageStop` → the chunk with `finish_reason`; `metadata` (which follows `messageStop`) → with
  `include_usage`, a last chunk with `choices: []` and the usage (left out when Bedrock reported
  none). With `include_usage` every other chunk carries `usage: None`.
- `stopped` is true once `messageStop` was translated, `done` once `metadata` followed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from router.dispatch.providers.anthropic_common import (
    DATA_URL,
    RESPONSE_FORMAT_TOOL,
    StreamError,
    TranslationError,
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
from router.dispatch.providers.openai_response import (
    add_tool_use,
    chunk,
    completion,
    openai_usage,
)

TARGET = "bedrock converse"

__all__ = [
    "MAX_EXCEPTION_MESSAGE_CHARS",
    "RESPONSE_FORMAT_TOOL",
    "ConverseStreamTranslator",
    "StreamError",
    "TranslationError",
    "from_converse",
    "stream_exception",
    "to_converse",
]

MAX_EXCEPTION_MESSAGE_CHARS = 2000
_MAX_EXCEPTION_TYPE_CHARS = 100

_IMAGE_FORMATS: Mapping[str, str] = {
    "image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp",
}

_FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

_CACHE_POINT: Mapping[str, Any] = {"cachePoint": {"type": "default"}}

# ---------------------------------------------------------------------------------------------
# requests


def to_converse(
    body: Mapping[str, Any], default_max_tokens: int | None = None
) -> dict[str, Any]:
    """An OpenAI chat-completions request body → a Converse request body."""
    body = want_mapping(body, "")
    refuse_unsupported(body, TARGET)
    if body.get("stream") is not None:
        want_bool(body["stream"], "/stream")
    system, messages, tool_history = _messages(body.get("messages"))
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = [{"text": system}]
    inference = _inference_config(body, default_max_tokens)
    if inference:
        out["inferenceConfig"] = inference
    tool_config = _tool_config(body)
    if tool_config is not None:
        out["toolConfig"] = tool_config
    elif tool_history is not None:
        if body.get("tools"):  # there were tools, dropped by tool_choice "none"
            fail("/tool_choice", "bedrock converse has no `tool_choice: none` for a "
                 "conversation that holds tool calls or results")
        fail(tool_history, "bedrock converse needs `tools` when the conversation holds tool "
             "calls or results")
    return out


def _inference_config(body: Mapping[str, Any], default_max_tokens: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    max_tokens = default_max_tokens
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            max_tokens = want_int(body[key], f"/{key}", 1)
            break
    if max_tokens is not None:
        out["maxTokens"] = max_tokens
    if body.get("temperature") is not None:
        out["temperature"] = min(want_number(body["temperature"], "/temperature"), 1.0)
    if body.get("top_p") is not None:
        out["topP"] = want_number(body["top_p"], "/top_p")
    stop = _stop(body.get("stop"))
    if stop:
        out["stopSequences"] = stop
    return out


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    texts = [want_str(s, f"/stop/{i}") for i, s in enumerate(want_list(value, "/stop"))]
    return [t for t in texts if t]


@dataclass
class _Turn:
    role: Literal["user", "assistant"]
    first: int  # index of the first OpenAI message merged into this turn
    blocks: list[dict[str, Any]] = field(default_factory=list)


def _messages(value: Any) -> tuple[str, list[dict[str, Any]], str | None]:
    """(system text, Converse messages, pointer to the first tool call or result or None)."""
    if value is None:
        fail("/messages", "is required")
    system: list[str] = []
    turns: list[_Turn] = []
    tool_history: str | None = None
    for i, raw in enumerate(want_list(value, "/messages")):
        pointer = f"/messages/{i}"
        message = want_mapping(raw, pointer)
        role = message.get("role")
        if role in ("system", "developer"):
            text = system_text(message.get("content"), f"{pointer}/content")
            if text:
                system.append(text)
            continue
        turn_role: Literal["user", "assistant"] = "assistant" if role == "assistant" else "user"
        if role == "user":
            blocks = _content_blocks(message.get("content"), f"{pointer}/content", images=True)
        elif role == "assistant":
            blocks = _assistant_blocks(message, pointer)
            if tool_history is None and any("toolUse" in b for b in blocks):
                tool_history = f"{pointer}/tool_calls"
        elif role == "tool":
            blocks = [_tool_result(message, pointer)]
            tool_history = tool_history or pointer
        elif role == "function":
            fail(f"{pointer}/role", "legacy `function` messages are not supported; use `tool`")
        else:
            fail(f"{pointer}/role", f"unknown role `{role}`")
        if turns and turns[-1].role == turn_role:
            turns[-1].blocks.extend(blocks)
        else:
            turns.append(_Turn(turn_role, i, blocks))
    messages = [_converse_message(turn) for turn in turns]
    if not messages:
        fail("/messages", "needs at least one user or assistant message")
    return "\n\n".join(system), messages, tool_history


def _converse_message(turn: _Turn) -> dict[str, Any]:
    blocks = turn.blocks
    if turn.role == "user":  # tool results open a user turn
        blocks = [b for b in blocks if "toolResult" in b] + [
            b for b in blocks if "toolResult" not in b
        ]
    if not blocks:
        fail(f"/messages/{turn.first}/content", "message has no content")
    return {"role": turn.role, "content": blocks}


def _content_blocks(content: Any, pointer: str, *, images: bool,
                    cache: bool = True) -> list[dict[str, Any]]:
    """Text (and, for user content, image) parts as Converse blocks; `cache_control` on a part
    adds a cache point after it when `cache` (not inside tool results)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for j, raw in enumerate(want_list(content, pointer)):
        part = want_mapping(raw, f"{pointer}/{j}")
        kind = part.get("type")
        if kind == "text" or (kind == "refusal" and not images):
            key = "text" if kind == "text" else "refusal"
            text = want_str(part.get(key), f"{pointer}/{j}/{key}")
            if not text:
                continue
            blocks.append({"text": text})
        elif kind == "image_url" and images:
            blocks.append(_image_block(part, f"{pointer}/{j}"))
        else:
            where = "user" if images else "assistant"
            fail(f"{pointer}/{j}/type", f"`{kind}` parts are not supported in {where} content")
        if cache and isinstance(part.get("cache_control"), Mapping):
            blocks.append(dict(_CACHE_POINT))
    return blocks


def _image_block(part: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    image = part.get("image_url")
    if isinstance(image, str):
        url, url_pointer = image, f"{pointer}/image_url"
    else:
        url = want_str(want_mapping(image, f"{pointer}/image_url").get("url"),
                       f"{pointer}/image_url/url")
        url_pointer = f"{pointer}/image_url/url"
    if url.startswith(("https://", "http://")):
        fail(url_pointer, "bedrock converse takes image bytes, not urls; send a base64 data url")
    match = DATA_URL.fullmatch(url)
    if match is None:
        fail(url_pointer, "image url must be a base64 data url")
    media_type = match["type"].strip().lower()
    if "base64" not in (p.strip().lower() for p in match["params"].split(";")):
        fail(url_pointer, "image data url must be base64-encoded")
    image_format = _IMAGE_FORMATS.get(media_type)
    if image_format is None:
        fail(url_pointer, f"image type `{media_type}` is not supported by bedrock converse")
    return {"image": {"format": image_format, "source": {"bytes": match["data"]}}}


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
        blocks.append({"toolUse": {
            "toolUseId": want_str(call.get("id"), f"{cp}/id"),
            "name": want_str(function.get("name"), f"{cp}/function/name"),
            "input": arguments(function.get("arguments"), f"{cp}/function/arguments"),
        }})
    return blocks


def _tool_result(message: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    tool_use_id = want_str(message.get("tool_call_id"), f"{pointer}/tool_call_id")
    content = _content_blocks(message.get("content"), f"{pointer}/content", images=False,
                              cache=False)
    return {"toolResult": {"toolUseId": tool_use_id, "content": content}}


def _tool_config(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """`toolConfig`, with `response_format` folded in; None when there is nothing to send."""
    raw_tools = body.get("tools")
    tools = [] if raw_tools is None else [_tool(t) for t in function_tools(raw_tools, TARGET)]
    choice = None if body.get("tool_choice") is None else _tool_choice(body["tool_choice"])
    if body.get("parallel_tool_calls") is not None:
        want_bool(body["parallel_tool_calls"], "/parallel_tool_calls")
    emulated = response_format_tool(body.get("response_format"), TARGET)
    if emulated is not None:
        format_tool = _tool(emulated)
        kind = "auto" if choice is None else next(iter(choice))
        if kind == "auto" and tools:
            choice = {"any": {}}
            tools.append(format_tool)
        elif kind in ("auto", "none"):
            choice = {"tool": {"name": RESPONSE_FORMAT_TOOL}}
            tools.append(format_tool)
    if not tools:
        if choice is not None and "none" not in choice:
            fail("/tool_choice", "`tool_choice` needs `tools`")
        return None
    if choice is not None and "none" in choice:
        return None  # Converse cannot forbid tool calls: withhold the tools
    out: dict[str, Any] = {"tools": tools}
    if choice is not None:
        out["toolChoice"] = choice
    return out


def _tool(tool: FunctionTool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["inputSchema"] = {"json": tool.schema}
    return {"toolSpec": spec}


def _tool_choice(value: Any) -> dict[str, Any]:
    """The Converse tool choice (`none` included, for `_tool_config` to act on)."""
    if isinstance(value, str):
        named = {"auto": "auto", "required": "any", "none": "none"}.get(value)
        if named is None:
            fail("/tool_choice", f"unknown tool_choice `{value}`")
        return {named: {}}
    choice = want_mapping(value, "/tool_choice")
    if choice.get("type") != "function":
        fail("/tool_choice/type", f"tool_choice type `{choice.get('type')}` is not supported")
    function = want_mapping(choice.get("function"), "/tool_choice/function")
    return {"tool": {"name": want_str(function.get("name"), "/tool_choice/function/name")}}


# ---------------------------------------------------------------------------------------------
# responses


def _finish_reason(stop_reason: str | None, has_tool_calls: bool) -> str:
    if stop_reason == "tool_use" and not has_tool_calls:
        return "stop"  # only the response-format tool was used
    return _FINISH_REASONS.get(stop_reason or "", "stop")


def _openai_usage(raw: Any, pointer: str) -> dict[str, Any]:
    """Converse usage in OpenAI form (cache tokens are not part of `inputTokens`)."""
    usage = want_mapping(raw, pointer)
    prompt = want_int(usage.get("inputTokens"), f"{pointer}/inputTokens")
    completion = want_int(usage.get("outputTokens"), f"{pointer}/outputTokens")
    cached: int | None = None
    for key in ("cacheReadInputTokens", "cacheWriteInputTokens"):
        if usage.get(key) is None:
            continue
        count = want_int(usage[key], f"{pointer}/{key}")
        prompt += count
        if key == "cacheReadInputTokens":
            cached = count
    return openai_usage(prompt, completion, cached)


def from_converse(
    data: Mapping[str, Any], model: str, created: int, response_id: str
) -> dict[str, Any]:
    """A Converse response → an OpenAI `chat.completion` object."""
    data = want_mapping(data, "")
    output = want_mapping(data.get("output"), "/output")
    message = want_mapping(output.get("message"), "/output/message")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    content = want_list(message.get("content"), "/output/message/content")
    for i, raw in enumerate(content):
        pointer = f"/output/message/content/{i}"
        block = want_mapping(raw, pointer)
        if "text" in block:
            texts.append(want_str(block["text"], f"{pointer}/text"))
        elif "toolUse" in block:
            tp = f"{pointer}/toolUse"
            tool_use = want_mapping(block["toolUse"], tp)
            add_tool_use(want_str(tool_use.get("toolUseId"), f"{tp}/toolUseId"),
                         want_str(tool_use.get("name"), f"{tp}/name"),
                         want_mapping(tool_use.get("input"), f"{tp}/input"), texts, tool_calls)
    stop_reason = data.get("stopReason")
    if stop_reason is not None:
        want_str(stop_reason, "/stopReason")
    usage = None if data.get("usage") is None else _openai_usage(data["usage"], "/usage")
    return completion(response_id, created, model, texts, tool_calls,
                      _finish_reason(stop_reason, bool(tool_calls)), usage)


# ---------------------------------------------------------------------------------------------
# streams

_BlockKind = Literal["text", "tool", "format", "other"]
_STREAM_EVENTS = frozenset({
    "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata",
})


def stream_exception(exception_type: str, payload: Mapping[str, Any]) -> StreamError:
    """The `StreamError` for an in-stream exception frame (e.g. `throttlingException`,
    `modelStreamErrorException`): its type, and the payload's `message` cut to
    `MAX_EXCEPTION_MESSAGE_CHARS` characters (empty when there is none)."""
    message = payload.get("message") if isinstance(payload, Mapping) else None
    if not isinstance(message, str):
        message = ""
    kind = str(exception_type)[:_MAX_EXCEPTION_TYPE_CHARS] or "exception"
    return StreamError(kind, message[:MAX_EXCEPTION_MESSAGE_CHARS])


class ConverseStreamTranslator:
    """ConverseStream events → OpenAI `chat.completion.chunk` dicts, one event at a time.

    `feed(event_type, payload)` takes the event's `:event-type` and its parsed JSON payload.
    Malformed events raise `TranslationError` (pointer into the payload). Exception frames are
    the caller's: see `stream_exception`. `stopped` is true after `messageStop`, `done` after
    `messageStop` and `metadata` (the usage, which ConverseStream sends last).
    """

    def __init__(self, model: str, created: int, response_id: str,
                 include_usage: bool = True) -> None:
        self.model = model
        self.created = created
        self.response_id = response_id
        self.include_usage = include_usage
        self._started = False
        self._blocks: dict[int, _BlockKind] = {}
        self._tool_index: dict[int, int] = {}  # content block index → OpenAI tool call index
        self._usage: dict[str, Any] | None = None
        self._stopped = False
        self._metadata = False

    @property
    def stopped(self) -> bool:
        """True once `messageStop` was translated."""
        return self._stopped

    @property
    def done(self) -> bool:
        """True once both `messageStop` and `metadata` were translated."""
        return self._stopped and self._metadata

    def usage(self) -> dict[str, Any] | None:
        """The usage in OpenAI form, once `metadata` reported it."""
        return None if self._usage is None else dict(self._usage)

    def feed(self, event_type: str, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        payload = want_mapping(payload, "")
        if event_type == "messageStart":
            return self._message_start(payload)
        if event_type not in _STREAM_EVENTS:
            return []  # event types added later
        if not self._started:
            fail("", f"`{event_type}` before `messageStart`")
        if event_type == "contentBlockStart":
            return self._block_start(payload)
        if event_type == "contentBlockDelta":
            return self._block_delta(payload)
        if event_type == "messageStop":
            return self._message_stop(payload)
        if event_type == "metadata":
            return self._metadata_event(payload)
        return []  # contentBlockStop

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return chunk(self.response_id, self.created, self.model, delta, finish_reason,
                     self.include_usage)

    def _usage_chunks(self) -> list[dict[str, Any]]:
        if not (self.include_usage and self.done and self._usage is not None):
            return []
        return [{
            "id": self.response_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": dict(self._usage),
        }]

    def _message_start(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._started:
            fail("", "second `messageStart`")
        role = payload.get("role")
        if role is not None and want_str(role, "/role") != "assistant":
            fail("/role", f"expected role `assistant`, got `{role}`")
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        index = want_int(payload.get("contentBlockIndex"), "/contentBlockIndex")
        if index in self._blocks:
            fail("/contentBlockIndex", f"content block {index} started twice")
        start = want_mapping(payload.get("start"), "/start")
        if "toolUse" not in start:
            self._blocks[index] = "other"  # images, tool results of server tools, …
            return []
        tool_use = want_mapping(start["toolUse"], "/start/toolUse")
        call_id = want_str(tool_use.get("toolUseId"), "/start/toolUse/toolUseId")
        name = want_str(tool_use.get("name"), "/start/toolUse/name")
        if name == RESPONSE_FORMAT_TOOL:
            self._blocks[index] = "format"
            return []
        self._blocks[index] = "tool"
        position = self._tool_index[index] = len(self._tool_index)
        call = {"index": position, "id": call_id, "type": "function",
                "function": {"name": name, "arguments": ""}}
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        index = want_int(payload.get("contentBlockIndex"), "/contentBlockIndex")
        delta = want_mapping(payload.get("delta"), "/delta")
        block = self._blocks.get(index)
        if "text" in delta:
            if block is None:
                block = self._blocks[index] = "text"  # text blocks have no start event
            if block != "text":
                fail("/delta/text", f"text delta for a {block} block")
            text = want_str(delta["text"], "/delta/text")
            return [self._chunk({"content": text})] if text else []
        if "toolUse" in delta:
            if block is None:
                fail("/contentBlockIndex", f"tool input for content block {index}, "
                     "which never started")
            if block == "text":
                fail("/delta/toolUse", "tool input delta for a text block")
            tool_use = want_mapping(delta["toolUse"], "/delta/toolUse")
            partial = want_str(tool_use.get("input"), "/delta/toolUse/input")
            if not partial or block == "other":
                return []
            if block == "format":
                return [self._chunk({"content": partial})]
            call = {"index": self._tool_index[index], "function": {"arguments": partial}}
            return [self._chunk({"tool_calls": [call]})]
        if block is None:
            self._blocks[index] = "other"  # reasoningContent, citations, …: not surfaced
        return []

    def _message_stop(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._stopped:
            return []
        stop_reason = payload.get("stopReason")
        if stop_reason is not None:
            want_str(stop_reason, "/stopReason")
        self._stopped = True
        finish = _finish_reason(stop_reason, bool(self._tool_index))
        return [self._chunk({}, finish), *self._usage_chunks()]

    def _metadata_event(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._metadata:
            return []
        if payload.get("usage") is not None:
            self._usage = _openai_usage(payload["usage"], "/usage")
        self._metadata = True
        return self._usage_chunks()
