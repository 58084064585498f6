"""The HTTP steps every adapter shares, each mapping transport failures by type (once):
a JSON POST, opening a streamed POST, reading a stream's server-sent events, a model listing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from router.dispatch.failures import UpstreamFailure, from_exception, from_status, malformed
from router.dispatch.providers.sse import SSEEvent, SSEParser

MAX_RESPONSE_BYTES = 32 * 1024 * 1024


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def post_json(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
                    timeout_s: float, provider: str, now: dt.datetime) -> Any:
    """POST and return the parsed JSON body of a 2xx answer; raise `UpstreamFailure` else."""
    request = client.build_request("POST", url, content=body, headers=headers,
                                   timeout=timeout_s)
    return await _send_json(client, request, provider, now)


async def get_json(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                   timeout_s: float, provider: str, now: dt.datetime) -> Any:
    request = client.build_request("GET", url, headers=headers, timeout=timeout_s)
    return await _send_json(client, request, provider, now)


async def _send_json(client: httpx.AsyncClient, request: httpx.Request, provider: str,
                     now: dt.datetime) -> Any:
    failure: UpstreamFailure | None = None
    try:
        resp = await client.send(request)
        content = resp.content
    except (httpx.HTTPError, OSError) as exc:
        failure = from_exception(exc, provider)
    if failure is not None:
        raise failure
    return _json_answer(resp.status_code, resp.headers, content, provider, now)


def _json_answer(status: int, headers: httpx.Headers, content: bytes, provider: str,
                 now: dt.datetime) -> Any:
    if status >= 300:
        raise from_status(status, headers, content, provider, now)
    if len(content) > MAX_RESPONSE_BYTES:
        raise malformed(provider, f"body over {MAX_RESPONSE_BYTES} bytes")
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        raise malformed(provider, "body is not JSON") from None


async def open_stream(client: httpx.AsyncClient, url: str, body: bytes,
                      headers: dict[str, str], timeout_s: float, provider: str,
                      now: dt.datetime) -> httpx.Response:
    """Send a streamed POST; a non-2xx answer is read and raised as a failure."""
    request = client.build_request("POST", url, content=body, headers=headers, timeout=timeout_s)
    failure: UpstreamFailure | None = None
    try:
        resp = await client.send(request, stream=True)
    except (httpx.HTTPError, OSError) as exc:
        failure = from_exception(exc, provider)
    if failure is not None:
        raise failure
    if resp.status_code < 300:
        return resp
    content = b""
    try:
        content = await resp.aread()
    except (httpx.HTTPError, OSError) as exc:
        failure = from_exception(exc, provider)
    finally:
        await resp.aclose()
    if failure is not None:
        raise failure
    raise from_status(resp.status_code, resp.headers, content, provider, now)


async def sse_events(resp: httpx.Response, provider: str) -> AsyncIterator[SSEEvent]:
    """The server-sent events of a streamed answer, bounded in size; transport failures
    mid-stream are raised as `UpstreamFailure`."""
    parser = SSEParser()
    received = 0
    text_iter = resp.aiter_text()
    while True:
        failure: UpstreamFailure | None = None
        try:
            text = await anext(text_iter)
        except StopAsyncIteration:
            return
        except (httpx.HTTPError, OSError) as exc:
            failure = from_exception(exc, provider)
        if failure is not None:
            raise failure
        received += len(text)
        if received > MAX_RESPONSE_BYTES:
            raise malformed(provider, f"stream over {MAX_RESPONSE_BYTES} bytes")
        for event in parser.feed(text):
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
