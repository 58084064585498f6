"""Anthropic Messages response and event stream → OpenAI chat completion and chunks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from router.dispatch.providers.anthropic_common import (
    FINISH_REASONS,
    RESPONSE_FORMAT_TOOL,
    USAGE_KEYS,
    StreamError,
    fail,
    want_int,
    want_list,
    want_mapping,
    want_str,
)
from router.dispatch.providers.openai_response import (
    add_tool_use,
    chunk,
    completion,
    openai_usage,
)

# ---------------------------------------------------------------------------------------------
# responses


def _finish_reason(stop_reason: str | None, has_tool_calls: bool) -> str:
    if stop_reason == "tool_use" and not has_tool_calls:
        return "stop"  # only the response-format tool (or server tools) were used
    return FINISH_REASONS.get(stop_reason or "", "stop")


def _openai_usage(raw: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    """Anthropic usage in OpenAI form. Cache counts the provider did not send are unknown, not
    zero: `prompt_tokens_details.cached_tokens` is only written when
    `cache_read_input_tokens` was reported (the prompt total adds the cache counts that were)."""
    counts: dict[str, int | None] = {}
    for key in USAGE_KEYS:
        value = raw.get(key)
        if value is None and key.startswith("cache_"):
            counts[key] = None
            continue
        counts[key] = want_int(value, f"{pointer}/{key}")
    cached = counts["cache_read_input_tokens"]
    prompt = sum(counts[k] or 0 for k in ("input_tokens", "cache_read_input_tokens",
                                          "cache_creation_input_tokens"))
    completion = counts["output_tokens"] or 0
    return openai_usage(prompt, completion, cached)


def from_anthropic(resp: Mapping[str, Any], model: str, created: int) -> dict[str, Any]:
    """An Anthropic Message → an OpenAI `chat.completion` object."""
    resp = want_mapping(resp, "")
    message_id = want_str(resp.get("id"), "/id")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for i, raw in enumerate(want_list(resp.get("content"), "/content")):
        pointer = f"/content/{i}"
        block = want_mapping(raw, pointer)
        kind = want_str(block.get("type"), f"{pointer}/type")
        if kind == "text":
            texts.append(want_str(block.get("text"), f"{pointer}/text"))
        elif kind == "tool_use":
            add_tool_use(want_str(block.get("id"), f"{pointer}/id"),
                         want_str(block.get("name"), f"{pointer}/name"),
                         want_mapping(block.get("input"), f"{pointer}/input"), texts, tool_calls)
    stop_reason = resp.get("stop_reason")
    if stop_reason is not None:
        want_str(stop_reason, "/stop_reason")
    usage = (None if resp.get("usage") is None
             else _openai_usage(want_mapping(resp["usage"], "/usage"), "/usage"))
    return completion(message_id, created, model, texts, tool_calls,
                      _finish_reason(stop_reason, bool(tool_calls)), usage)


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
        data = want_mapping(data, "")
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
            fail("/type", f"`{kind}` before `message_start`")
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            delta = data.get("delta")
            if delta is not None:
                stop_reason = want_mapping(delta, "/delta").get("stop_reason")
                if stop_reason is not None:
                    self._stop_reason = want_str(stop_reason, "/delta/stop_reason")
            self._add_usage(data.get("usage"), "/usage")
            return []
        if kind == "message_stop":
            return self._message_stop()
        return []  # content_block_stop

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return chunk(self._id, self.created, self.model, delta, finish_reason,
                     self.include_usage)

    def _add_usage(self, usage: Any, pointer: str) -> None:
        if usage is None:
            return
        usage = want_mapping(usage, pointer)
        for key in USAGE_KEYS:  # counts are cumulative: the latest value wins
            if usage.get(key) is not None:
                self._usage[key] = want_int(usage[key], f"{pointer}/{key}")

    def _message_start(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self._id is not None:
            fail("/type", "second `message_start`")
        message = want_mapping(data.get("message"), "/message")
        self._id = want_str(message.get("id"), "/message/id")
        self._add_usage(message.get("usage"), "/message/usage")
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        index = want_int(data.get("index"), "/index")
        if index in self._blocks:
            fail("/index", f"content block {index} started twice")
        block = want_mapping(data.get("content_block"), "/content_block")
        kind = want_str(block.get("type"), "/content_block/type")
        if kind == "text":
            self._blocks[index] = "text"
            text = block.get("text")
            if text is not None and want_str(text, "/content_block/text"):
                return [self._chunk({"content": text})]
            return []
        if kind != "tool_use":
            self._blocks[index] = "other"  # thinking, server tools, …: not surfaced
            return []
        call_id = want_str(block.get("id"), "/content_block/id")
        name = want_str(block.get("name"), "/content_block/name")
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
        index = want_int(data.get("index"), "/index")
        block = self._blocks.get(index)
        if block is None:
            fail("/index", f"delta for content block {index}, which never started")
        delta = want_mapping(data.get("delta"), "/delta")
        kind = want_str(delta.get("type"), "/delta/type")
        if kind == "text_delta":
            if block != "text":
                fail("/delta/type", f"text delta for a {block} block")
            text = want_str(delta.get("text"), "/delta/text")
            return [self._chunk({"content": text})] if text else []
        if kind == "input_json_delta" and block != "other":
            if block == "text":
                fail("/delta/type", "input_json delta for a text block")
            partial = want_str(delta.get("partial_json"), "/delta/partial_json")
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

