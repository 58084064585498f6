"""The HTTP steps every adapter shares, each mapping transport failures by type (once):
a JSON POST, opening a streamed POST, reading a stream's server-sent events, a model listing.

Every body is read as a stream and bounded while it arrives (never buffered whole first): a
JSON answer to `MAX_RESPONSE_BYTES`, an error answer to `MAX_ERROR_READ_BYTES`, a stream to
`MAX_RESPONSE_BYTES` in all and `MAX_EVENT_CHARS` per event or line."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx

from router.common import wirejson
from router.common.jsonio import opening_brackets
from router.dispatch.failures import (
    UpstreamFailure,
    from_exception,
    from_status,
    malformed,
    no_json_constant,
    too_deep,
)
from router.dispatch.http1 import body_pieces, close_response, new_request, read_to_end
from router.dispatch.providers.sse import SSEEvent, SSEEventTooLarge, SSEParser

MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a whole JSON answer, or a whole stream
MAX_ERROR_READ_BYTES = 64 * 1024  # of an error answer (its first 16 KiB are kept)
MAX_EVENT_CHARS = 1024 * 1024  # one server-sent event (or one line of the stream)
MAX_JSON_DEPTH = 64  # nesting of a provider's JSON answer or stream event
DRAIN_TIMEOUT_S = 0.05  # how long a finished stream's rest is awaited (see `drain`)


def dumps(body: dict[str, Any]) -> bytes:
    return wirejson.dumps(body)


def parse_json(data: str | bytes | bytearray, provider: str, what: str) -> Any:
    """A provider's JSON, refused as malformed when it is not strict JSON (NaN, Infinity) or
    nests deeper than `MAX_JSON_DEPTH`."""
    try:
        value = wirejson.loads(data, no_json_constant)
    except (ValueError, RecursionError):
        raise malformed(provider, f"{what} is not JSON") from None
    if opening_brackets(data) > MAX_JSON_DEPTH and too_deep(value, MAX_JSON_DEPTH):
        raise malformed(provider, f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


async def post_json(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
                    timeout_s: float, provider: str, now: dt.datetime) -> Any:
    """POST and return the parsed JSON body of a 2xx answer; raise `UpstreamFailure` else."""
    request = new_request(client, "POST", url, body, headers, timeout_s)
    return await _send_json(client, request, provider, now)


async def get_json(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                   timeout_s: float, provider: str, now: dt.datetime) -> Any:
    request = new_request(client, "GET", url, None, headers, timeout_s)
    return await _send_json(client, request, provider, now)


async def read_upto(resp: httpx.Response, limit: int) -> tuple[bytearray, bool]:
    """At most `limit` bytes of a streamed body (decoded), and whether that was all of it.
    Reading stops as soon as the limit is passed, so a huge or endless body never sits in
    memory; a declared `Content-Length` over the limit is not read at all."""
    declared = resp.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared[:20]) > limit:
        return bytearray(), False
    buf = bytearray()
    async for chunk in body_pieces(resp):
        room = limit - len(buf)
        if len(chunk) > room:
            buf += chunk[:room]
            return buf, False
        buf += chunk
    return buf, True


async def _send_json(client: httpx.AsyncClient, request: httpx.Request, provider: str,
                     now: dt.datetime) -> Any:
    failure: UpstreamFailure | None = None
    try:
        resp = await client.send(request, stream=True)
    except (httpx.HTTPError, OSError) as exc:
        failure = from_exception(exc, provider)
    if failure is not None:
        raise failure
    if resp.status_code >= 300:
        raise from_status(resp.status_code, resp.headers, await error_content(resp), provider,
                          now)
    whole = True
    content = bytearray()
    try:
        content, whole = await read_upto(resp, MAX_RESPONSE_BYTES)
    except (httpx.HTTPError, OSError) as exc:
        failure = from_exception(exc, provider)
    finally:
        await close_response(resp)
    if failure is not None:
        raise failure
    if not whole:
        raise malformed(provider, f"body over {MAX_RESPONSE_BYTES} bytes")
    return parse_json(content, provider, "body")


async def open_stream(client: httpx.AsyncClient, url: str, body: bytes,
                      headers: dict[str, str], timeout_s: float, provider: str,
                      now: dt.datetime) -> httpx.Response:
    """Send a streamed POST; a non-2xx answer is read (its first `MAX_ERROR_READ_BYTES`) and
    raised as a failure."""
    request = new_request(client, "POST", url, body, headers, timeout_s)
    failure: UpstreamFailure | None = None
    try:
        resp = await client.send(request, stream=True)
    except (httpx.HTTPError, OSError) as exc:
        failure = from_exception(exc, provider)
    if failure is not None:
        raise failure
    if resp.status_code < 300:
        return resp
    raise from_status(resp.status_code, resp.headers, await error_content(resp), provider, now)


async def error_content(resp: httpx.Response) -> bytes:
    """The first `MAX_ERROR_READ_BYTES` of an error answer, then the response is closed. The
    answer is classified by its status, so a body that breaks off (or cannot be decoded) only
    loses the rest of the body."""
    buf = bytearray()
    try:
        async for chunk in body_pieces(resp):
            buf += chunk[:MAX_ERROR_READ_BYTES - len(buf)]
            if len(buf) >= MAX_ERROR_READ_BYTES:
                break
    except (httpx.HTTPError, OSError):
        pass
    finally:
        await close_response(resp)
    return bytes(buf)


async def stream_chunks(resp: httpx.Response, provider: str) -> AsyncIterator[bytes]:
    """The bytes of a streamed answer as they arrive, `MAX_RESPONSE_BYTES` in all; transport
    failures mid-stream are raised as `UpstreamFailure`."""
    received = 0
    chunks = body_pieces(resp)
    while True:
        failure: UpstreamFailure | None = None
        try:
            data = await anext(chunks)
        except StopAsyncIteration:
            return
        except (httpx.HTTPError, OSError) as exc:
            failure = from_exception(exc, provider)
        if failure is not None:
            raise failure
        received += len(data)
        if received > MAX_RESPONSE_BYTES:
            raise malformed(provider, f"stream over {MAX_RESPONSE_BYTES} bytes")
        yield data


async def drain(events: AsyncIterator[Any], resp: httpx.Response | None = None
                ) -> None:
    """Read a finished stream to its end — after `[DONE]` or `message_stop` only the chunked
    terminator is left, normally in the same packet — so that its connection goes back to the
    pool instead of being closed (a new TCP connection per streamed call, otherwise). Gives up
    after `DRAIN_TIMEOUT_S` or at any failure, which only costs the connection; the stream's
    bounds still apply. When `resp`'s body was already taken to its end (the terminator came
    with the last event), no read can wait, and no deadline is set."""
    with contextlib.suppress(Exception):
        if resp is not None and read_to_end(resp):
            async for _ in events:
                pass
            return
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for _ in events:
                pass


async def sse_batches(resp: httpx.Response, provider: str) -> AsyncIterator[list[SSEEvent]]:
    """The server-sent events of a streamed answer, those one read completed in one list
    (never empty), bounded in size (the whole stream, one event, one line); transport
    failures mid-stream are raised as `UpstreamFailure`."""
    parser = SSEParser(max_event_chars=MAX_EVENT_CHARS)
    async for data in stream_chunks(resp, provider):
        failure: UpstreamFailure | None = None
        try:
            events = parser.feed_bytes(data)
        except SSEEventTooLarge:
            failure = malformed(provider, f"stream event over {MAX_EVENT_CHARS} characters")
        if failure is not None:
            raise failure
        if events:
            yield events


async def sse_events(resp: httpx.Response, provider: str) -> AsyncIterator[SSEEvent]:
    """`sse_batches` one event at a time."""
    async for events in sse_batches(resp, provider):
        for event in events:
            yield event


async def list_model_ids(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                         provider: str, timeout_s: float, now: dt.datetime) -> list[str]:
    """GET a model listing (`{"data": [{"id": ...}, ...]}`) and return the ids."""
    data = await get_json(client, url, headers, timeout_s, provider, now)
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise malformed(provider, "model list has no `data` list")
    return sorted({str(m["id"]) for m in items if isinstance(m, dict)
                   and isinstance(m.get("id"), str)})
