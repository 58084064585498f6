"""Request features (spec §3): derived from an OpenAI chat-completions body, never from free text.

`input_tokens` is an upper bound of the prompt's tokens (`router.request.tokens`, estimator
`utf8-class-bound/1`): the bound of each message text, tool call, other content part, the tool
definitions and the response schema (JSON text, non-ASCII characters unescaped), plus
`MESSAGE_OVERHEAD` tokens per message and `REPLY_OVERHEAD` once (the chat template's role and
separator tokens and the assistant's reply prefix). Images count a fixed 1,000 tokens each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from router.common import jsonio
from router.common.problems import LABEL, Problem, RequestError
from router.request.tokens import estimate_tokens

MAX_REQUEST_BYTES = 8 * 1024 * 1024
MAX_IMAGE_CHARS = MAX_REQUEST_BYTES  # one image part (a data URL carries the whole image)
MAX_LABELS = 32
MAX_MESSAGES = 10_000
MAX_REQUEST_DEPTH = 64  # levels of arrays and objects (a JSON schema or tool definition nests)
IMAGE_TOKENS = 1000
MESSAGE_OVERHEAD = 4
REPLY_OVERHEAD = 3
# The call parameters a policy may mutate (spec §7), in a fixed order.
CALL_PARAMS = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
               "presence_penalty", "frequency_penalty", "reasoning_effort",
               "parallel_tool_calls", "service_tier", "user")
# Fields the router reads and removes before it calls a provider.
ROUTER_FIELDS = ("labels",)


class RequestFeatures(BaseModel):
    """What a decision may know about a request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int = Field(ge=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    needs: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    # The mutable call parameters the request sets itself (a policy `default` never overrides
    # them; a clamp writes the max-tokens field the request used).
    params_set: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """A validated chat-completions body and its features."""

    body: Mapping[str, Any]
    features: RequestFeatures
    provider_body: Mapping[str, Any] = field(default_factory=dict)


def refuse_non_json(body: dict[str, Any]) -> None:
    """A library caller's dict holds only what a strict JSON reader could have produced: no NaN
    or infinity (it would reach the provider as non-standard JSON), no integer over 40 digits,
    no nesting past `MAX_REQUEST_DEPTH` (it would overflow the encoder), no lone surrogate, no
    other type. Checked first, without recursion; the first 20 problems are reported."""
    found = jsonio.value_problems(body, MAX_REQUEST_DEPTH)
    if found:
        raise RequestError([Problem(code=f"request.{p.kind}", pointer=p.pointer,
                                    message=p.message, hint=p.hint) for p in found])


def features_of(body: object) -> RequestFeatures:
    return parse_request(body).features


def parse_request(body: object) -> Request:
    problems: list[Problem] = []

    def bad(pointer: str, message: str, hint: str | None = None) -> None:
        problems.append(Problem(code="request.invalid", pointer=pointer, message=message,
                                hint=hint))

    if isinstance(body, Mapping) and not isinstance(body, dict):
        body = dict(body)
    if not isinstance(body, dict):
        raise RequestError([Problem(code="request.invalid", pointer="",
                                    message="a request is a chat-completions JSON object")])
    refuse_non_json(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        bad("/messages", "`messages` must be a non-empty list")
        messages = []
    elif len(messages) > MAX_MESSAGES:
        bad("/messages", f"{len(messages)} messages; the limit is {MAX_MESSAGES}")
        messages = []
    chars = 0
    text_tokens = 0  # upper bound of the text's tokens (`estimate_tokens`)
    images = 0
    image_chars = 0  # counted toward the size limit, not the token estimate
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            bad(f"/messages/{i}", "each message is an object with a `role`")
            continue
        content = msg.get("content")
        if isinstance(content, str):
            chars += len(content)
            text_tokens += estimate_tokens(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict):
                    bad(f"/messages/{i}/content/{j}", "a content part is an object")
                elif part.get("type") == "text" and isinstance(part.get("text"), str):
                    chars += len(part["text"])
                    text_tokens += estimate_tokens(part["text"])
                elif part.get("type") in ("image_url", "input_image"):
                    images += 1
                    image_chars += image_part_chars(part, f"/messages/{i}/content/{j}",
                                                    problems)
                else:
                    chars, text_tokens = add_json(part, chars, text_tokens)
        elif content is not None:
            bad(f"/messages/{i}/content", "content is a string, a list of parts, or null")
        if msg.get("tool_calls") is not None:
            chars, text_tokens = add_json(msg["tool_calls"], chars, text_tokens)
    tools = body.get("tools")
    needs: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            bad("/tools", "`tools` must be a list")
        elif tools:
            needs.add("tools")
            chars, text_tokens = add_json(tools, chars, text_tokens)
    if images:
        needs.add("vision")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        needs.add("json_schema")
        chars, text_tokens = add_json(fmt, chars, text_tokens)
    if body.get("stream") is True:
        needs.add("streaming")
    max_out: int | None = None
    for key in ("max_completion_tokens", "max_tokens"):
        v = body.get(key)
        if v is None:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            bad(f"/{key}", f"`{key}` must be a positive integer")
        elif max_out is None:
            max_out = v
    labels_raw = body.get("labels", [])
    labels: list[str] = []
    if not isinstance(labels_raw, list):
        bad("/labels", "`labels` must be a list of strings")
    elif len(labels_raw) > MAX_LABELS:
        bad("/labels", f"{len(labels_raw)} labels; the limit is {MAX_LABELS}")
    else:
        for i, label in enumerate(labels_raw):
            if not isinstance(label, str) or not LABEL.fullmatch(label):
                bad(f"/labels/{i}", "a label is 1-64 letters, digits or `_.:-`",
                    'e.g. "pii"')
            else:
                labels.append(label)
    if chars + image_chars > MAX_REQUEST_BYTES:
        problems.append(content_size_problem(chars, image_chars))
    if problems:
        raise RequestError(problems)
    tokens = (text_tokens + MESSAGE_OVERHEAD * len(messages) + REPLY_OVERHEAD
              + IMAGE_TOKENS * images)
    features = RequestFeatures(
        input_tokens=tokens,
        max_output_tokens=max_out,
        needs=tuple(sorted(needs)),
        labels=tuple(sorted(set(labels))),
        params_set=tuple(p for p in CALL_PARAMS if body.get(p) is not None),
    )
    provider_body = {k: v for k, v in body.items() if k not in ROUTER_FIELDS}
    return Request(body=body, features=features, provider_body=provider_body)


def add_json(value: object, chars: int, tokens: int) -> tuple[int, int]:
    """Add a JSON value (a tool definition, tool call, schema or other part) to the content
    size (`chars`: its escaped JSON text, as before) and to the token bound (its JSON text with
    non-ASCII characters as themselves, as a provider reads them)."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    size = len(text) if text.isascii() else len(json.dumps(value, default=str))
    return chars + size, tokens + estimate_tokens(text)


def image_part_chars(part: Mapping[str, Any], pointer: str, problems: list[Problem]) -> int:
    """The size of an image part (its URL: a data URL carries the whole image), counted toward
    the request's size limit; one image over `MAX_IMAGE_CHARS` is refused at its pointer."""
    source = part.get("image_url")
    url: Any = source.get("url") if isinstance(source, Mapping) else source
    where = pointer + ("/image_url/url" if isinstance(source, Mapping) else "/image_url")
    if isinstance(url, str):
        size = len(url)
    else:
        size, where = len(json.dumps(part, default=str)), pointer
    if size <= MAX_IMAGE_CHARS:
        return size
    problems.append(Problem(
        code="request.image_too_large", pointer=where,
        message=f"an image of {size} characters; the limit is {MAX_IMAGE_CHARS} (for all of "
                f"a request's content, images included)",
        hint="send a smaller (resized or compressed) image, or an https URL the provider "
             "fetches itself"))
    return 0  # refused on its own; not counted again in the total


def content_size_problem(chars: int, image_chars: int) -> Problem:
    """The request's content (text, other parts, tools, schema, and images) is over the limit."""
    if not image_chars:
        return Problem(code="request.too_large", pointer="",
                       message=f"about {chars} characters of content; the limit is "
                               f"{MAX_REQUEST_BYTES}")
    return Problem(code="request.too_large", pointer="",
                   message=f"about {chars + image_chars} characters of content, "
                           f"{image_chars} of them in images; the limit is {MAX_REQUEST_BYTES}",
                   hint="send fewer or smaller images, or https URLs the provider fetches "
                        "itself")
