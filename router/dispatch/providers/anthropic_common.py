"""Shared by the Anthropic translation modules: constants, errors, value checks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

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

DATA_URL = re.compile(r"data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.DOTALL)
USAGE_KEYS = (
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


def fail(pointer: str, message: str) -> NoReturn:
    raise TranslationError(pointer, message)


def want_mapping(value: Any, pointer: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        fail(pointer, "must be an object")
    return value


def want_list(value: Any, pointer: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        fail(pointer, "must be an array")
    return value


def want_str(value: Any, pointer: str) -> str:
    if not isinstance(value, str):
        fail(pointer, "must be a string")
    return value


def want_int(value: Any, pointer: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(pointer, f"must be an integer ≥ {minimum}")
    return value


def want_number(value: Any, pointer: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(pointer, "must be a number")
    return value


def want_bool(value: Any, pointer: str) -> bool:
    if not isinstance(value, bool):
        fail(pointer, "must be a boolean")
    return value


