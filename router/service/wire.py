"""ASGI plumbing: read a bounded body within a deadline, answer JSON, frame server-sent events
exactly as OpenAI does (`data: {json}\\n\\n`, then `data: [DONE]\\n\\n`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from router.common import wirejson
from router.service.errors import ServiceError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"),
               (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
DONE = b"data: [DONE]\n\n"


class Disconnected(Exception):
    """The client went away before its body arrived."""


def header(scope: Scope, name: bytes) -> str | None:
    """One request header (the first), decoded as latin-1 as HTTP says."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def require_json(scope: Scope) -> None:
    kind = (header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise ServiceError(415, "unsupported_media_type",
                           f"the body must be `application/json`, not `{kind[:100] or 'none'}`",
                           None)


async def read_body(scope: Scope, receive: Receive, limit: int, timeout_s: float) -> bytes:
    """The whole body, refused with 413 past `limit` bytes (before reading it when
    Content-Length says so) and with 408 when it does not arrive within `timeout_s`."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):  # one deadline for the whole body
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Disconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise ServiceError(408, "body_timeout",
                           f"the request body did not arrive within {timeout_s:g} s",
                           None) from None


DISCARD_BYTES = 64 * 1024
DISCARD_S = 1.0


async def discard_body(receive: Receive, limit: int = DISCARD_BYTES,
                       timeout_s: float = DISCARD_S) -> None:
    """Read and drop what is left of a refused request's body (at most `limit` bytes, for at
    most `timeout_s`), so the server does not close the connection on unread bytes: a close
    with unread bytes is a TCP reset, which can reach the client before the error answer and
    lose it. A larger or slower body is left (the answer is sent anyway)."""
    size = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while size <= limit:
                message = await receive()
                if message["type"] != "http.request":
                    return
                size += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


def _too_large(limit: int) -> ServiceError:
    return ServiceError(413, "body_too_large", f"the request body is over {limit} bytes",
                        None, {"limit_bytes": limit})


def dumps(value: Any) -> bytes:
    return wirejson.dumps(value)


def encode_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers.items()]


async def send_json(send: Send, status: int, value: Any,
                    headers: Mapping[str, str] | None = None) -> None:
    body = dumps(value)
    await send({"type": "http.response.start", "status": status,
                "headers": [JSON_TYPE, (b"content-length", str(len(body)).encode()),
                            *encode_headers(headers or {})]})
    await send({"type": "http.response.body", "body": body})


async def send_text(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def sse(data: Any) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"
