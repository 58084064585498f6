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

from router.dispatch.providers.anthropic_common import (
    RESPONSE_FORMAT_TOOL,
    StreamError,
    TranslationError,
)
from router.dispatch.providers.anthropic_request import to_anthropic
from router.dispatch.providers.anthropic_response import AnthropicStreamTranslator, from_anthropic

__all__ = [
    "RESPONSE_FORMAT_TOOL",
    "AnthropicStreamTranslator",
    "StreamError",
    "TranslationError",
    "from_anthropic",
    "to_anthropic",
]
