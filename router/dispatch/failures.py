"""Upstream failures, classified once: by HTTP status code and exception type, never by text.

| kind          | from                                                                  |
|---------------|-----------------------------------------------------------------------|
| `timeout`     | the per-attempt timeout elapsed (connect, read or the whole attempt)  |
| `rate_limit`  | 429; 529 and 503 (overloaded)                                         |
| `error`       | other 5xx, connection refused/reset, protocol errors, malformed body  |
| `bad_request` | 4xx other than 429: not retried, returned as the provider said it     |

A failure's message is written by the router (status, exception type); provider error bodies are
kept apart (`body`) and a key is never part of either.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

FailureKind = Literal["timeout", "rate_limit", "error", "bad_request"]
MAX_ERROR_BODY_CHARS = 4096


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
    """The provider's error body as JSON when it is JSON, else as (truncated) text."""
    import json

    text = body[:MAX_ERROR_BODY_CHARS * 4].decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text[:MAX_ERROR_BODY_CHARS]


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
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, list):
        return [_scrub(v, secret) for v in value]
    if isinstance(value, dict):
        return {_scrub(k, secret): _scrub(v, secret) for k, v in value.items()}
    return value
