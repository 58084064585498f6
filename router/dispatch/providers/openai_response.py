"""Building an OpenAI `chat.completion` (and its stream chunks) from what a translator read out
of another API's answer (Anthropic Messages, Bedrock Converse): text parts, tool uses (the
response-format tool's input becomes the content), the finish reason and usage."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from router.dispatch.providers.anthropic_common import RESPONSE_FORMAT_TOOL


def add_tool_use(call_id: str, name: str, tool_input: Mapping[str, Any], texts: list[str],
                 tool_calls: list[dict[str, Any]]) -> None:
    """One tool use: a tool call, or (for the response-format tool) the answer's text."""
    arguments = json.dumps(tool_input, ensure_ascii=False)
    if name == RESPONSE_FORMAT_TOOL:
        texts.append(arguments)
    else:
        tool_calls.append({"id": call_id, "type": "function",
                           "function": {"name": name, "arguments": arguments}})


def openai_usage(prompt: int, completion: int, cached: int | None) -> dict[str, Any]:
    """OpenAI's `usage`; `prompt_tokens_details.cached_tokens` only when the provider reported
    a cache-read count (unknown is not zero)."""
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def completion(response_id: str, created: int, model: str, texts: list[str],
               tool_calls: list[dict[str, Any]], finish_reason: str,
               usage: dict[str, Any] | None) -> dict[str, Any]:
    """The `chat.completion`: content `None` when there are tool calls and no text, `""` when
    there is nothing; no `usage` key when the provider reported none."""
    joined = "".join(texts)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": joined if joined or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    out: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def chunk(response_id: str | None, created: int, model: str, delta: dict[str, Any],
          finish_reason: str | None, include_usage: bool) -> dict[str, Any]:
    """One `chat.completion.chunk` of choice 0 (`usage: null` on every chunk but the last when
    usage was asked for, as OpenAI sends it)."""
    out: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    if include_usage:
        out["usage"] = None
    return out
