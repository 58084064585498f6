"""Upstream failures, classified once: by HTTP status code and exception type, never by text.

| kind          | from                                                                  |
|---------------|-----------------------------------------------------------------------|
| `timeout`     | the per-attempt timeout elapsed (connect, read or the whole attempt)  |
| `rate_limit`  | 429; 529 and 503 (overloaded)                                         |
| `error`       | other 5xx, connection refused/reset, protocol errors, malformed body  |
| `bad_request` | 4xx other than 429: not retried, returned as the provider said it     |

A failure's message is written by the router (status, exception type); provider error bodies are
kept apart (`body`) and a key is never part of either. A body is kept as JSON only while it is
small and shallow (`MAX_ERROR_BODY_CHARS`, `MAX_ERROR_DEPTH`), else as its first characters of
text, so a hostile body can neither exhaust the stack nor bloat the record.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

FailureKind = Literal["timeout", "rate_limit", "error", "bad_request"]
MAX_ERROR_BODY_CHARS = 4096
MAX_ERROR_DEPTH = 32  # deeper JSON error bodies are kept as text


@dataclass(frozen=True)
class UpstreamFailure(Exception):
    """One failed attempt at one provider."""

    kind: FailureKind
    message: str
    status: int | None = None
    retry_after_s: float | None = None
    body: Any = None  # the provider's error body (JSON value or truncated text), if any

    def __str__(self) -> str:
        return self.message


def status_kind(status: int) -> FailureKind | None:
    """The failure kind of an HTTP status; None for success."""
    if status < 400:
        return None
    if status in (429, 503, 529):
        return "rate_limit"
    if status >= 500:
        return "error"
    if status == 408:
        return "timeout"
    return "bad_request"


def retry_after_seconds(headers: Mapping[str, str], now: dt.datetime) -> float | None:
    """`Retry-After` (delta seconds or an HTTP date), or `retry-after-ms`; None if absent/bad."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isascii() and raw.isdigit():
        return float(int(raw[:12]))
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def from_status(status: int, headers: Mapping[str, str], body: bytes, provider: str,
                now: dt.datetime) -> UpstreamFailure:
    kind = status_kind(status) or "error"
    return UpstreamFailure(
        kind=kind,
        message=f"{provider} answered HTTP {status}",
        status=status,
        retry_after_s=retry_after_seconds(headers, now) if kind == "rate_limit" else None,
        body=error_body(body),
    )


def error_body(body: bytes) -> Any:
    """The provider's error body as JSON when it is small, shallow JSON, else as (truncated)
    text."""
    text = body[:MAX_ERROR_BODY_CHARS * 4].decode("utf-8", errors="replace")
    try:
        value = json.loads(text, parse_constant=no_json_constant)
    except (ValueError, RecursionError):
        return text[:MAX_ERROR_BODY_CHARS]
    return bounded(value, text)


def bounded(value: Any, text: str | None = None) -> Any:
    """`value` if it is at most `MAX_ERROR_DEPTH` deep and its JSON at most
    `MAX_ERROR_BODY_CHARS * 4` characters; else its first `MAX_ERROR_BODY_CHARS` characters of
    text (`text`, or its JSON when it is shallow enough to write)."""
    if too_deep(value, MAX_ERROR_DEPTH):
        if text is None:
            text = "(an error body nested too deeply to keep)"
        return text[:MAX_ERROR_BODY_CHARS]
    if isinstance(value, str):
        return value if len(value) <= MAX_ERROR_BODY_CHARS * 4 else value[:MAX_ERROR_BODY_CHARS]
    if text is None:
        text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > MAX_ERROR_BODY_CHARS * 4:
        return text[:MAX_ERROR_BODY_CHARS]
    return value


def too_deep(value: Any, limit: int) -> bool:
    """True when lists and objects nest more than `limit` levels (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children
                         if isinstance(child, list | dict))
    return False


def no_json_constant(name: str) -> Any:
    """`json.loads(..., parse_constant=no_json_constant)`: NaN and Infinity are not JSON."""
    raise ValueError(f"`{name}` is not JSON")


def from_exception(exc: BaseException, provider: str) -> UpstreamFailure:
    """Map a transport exception to a failure, by type only."""
    name = type(exc).__name__
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return UpstreamFailure("timeout", f"{provider}: timed out ({name})")
    if isinstance(exc, httpx.TransportError):
        return UpstreamFailure("error", f"{provider}: connection failed ({name})")
    return UpstreamFailure("error", f"{provider}: unexpected failure ({name})")


def malformed(provider: str, what: str, status: int | None = 200) -> UpstreamFailure:
    return UpstreamFailure("error", f"{provider}: malformed response ({what})", status=status)


def scrubbed(failure: UpstreamFailure, secret: str | None) -> UpstreamFailure:
    """The failure with every occurrence of a key removed (providers sometimes echo keys)."""
    if not secret:
        return failure
    from dataclasses import replace

    return replace(failure, message=failure.message.replace(secret, "***"),
                   body=_scrub(failure.body, secret))


def _scrub(value: Any, secret: str) -> Any:
    """A copy of a JSON value with `secret` replaced in every string and key, built without
    recursion (a body nested thousands of levels deep must not exhaust the stack)."""

    def leaf(v: Any) -> Any:
        return v.replace(secret, "***") if isinstance(v, str) else v

    if not isinstance(value, list | dict):
        return leaf(value)
    root: list[Any] | dict[Any, Any] = [] if isinstance(value, list) else {}
    stack: list[tuple[list[Any] | dict[Any, Any], list[Any] | dict[Any, Any]]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            copy: Any
            if isinstance(item, list | dict):
                copy = [] if isinstance(item, list) else {}
                stack.append((item, copy))
            else:
                copy = leaf(item)
            if isinstance(target, list):
                target.append(copy)
            else:
                target[leaf(key)] = copy
    return root
