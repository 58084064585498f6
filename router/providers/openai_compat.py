"""OpenAI-compatible chat completions: OpenAI, Gemini's OpenAI endpoint, Mistral, DeepSeek, xAI,
Groq, Together, OpenRouter, Fireworks, Cerebras, DeepInfra, vLLM, Ollama, LM Studio.

The body goes out as the caller wrote it (after the hop's mutations); streaming always asks for
the usage chunk (`stream_options.include_usage`) so the call can be priced.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from router.failures import UpstreamFailure, from_exception, from_status, malformed
from router.providers.base import Endpoint, ProviderCall
from router.providers.sse import SSEParser

MAX_RESPONSE_BYTES = 32 * 1024 * 1024


def _headers(endpoint: Endpoint) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if endpoint.api_key is not None:
        headers["authorization"] = "Bearer " + endpoint.api_key.reveal()
    return headers


def check_completion(data: Any, provider: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise malformed(provider, "body is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not all(
        isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices
    ):
        raise malformed(provider, "no `choices[].message`")
    return data


class OpenAICompatible:
    wire = "openai"

    async def complete(self, client: httpx.AsyncClient, call: ProviderCall,
                       now: dt.datetime) -> dict[str, Any]:
        ep = call.endpoint
        body = dict(call.body)
        body.pop("stream", None)
        body.pop("stream_options", None)
        failure: UpstreamFailure | None = None
        try:
            resp = await client.post(ep.url("/chat/completions"), content=_dumps(body),
                                     headers=_headers(ep), timeout=call.timeout_s)
            content = resp.content
        except (httpx.HTTPError, OSError) as exc:
            failure = from_exception(exc, ep.provider)
        if failure is not None:
            raise failure
        if resp.status_code >= 300:
            raise from_status(resp.status_code, resp.headers, content, ep.provider, now)
        if len(content) > MAX_RESPONSE_BYTES:
            raise malformed(ep.provider, f"body over {MAX_RESPONSE_BYTES} bytes")
        try:
            data = json.loads(content)
        except ValueError:
            raise malformed(ep.provider, "body is not JSON") from None
        return check_completion(data, ep.provider)

    async def stream(self, client: httpx.AsyncClient, call: ProviderCall,
                     now: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        ep = call.endpoint
        body = dict(call.body)
        body["stream"] = True
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                  "include_usage": True}
        request = client.build_request("POST", ep.url("/chat/completions"), content=_dumps(body),
                                       headers=_headers(ep), timeout=call.timeout_s)
        failure: UpstreamFailure | None = None
        resp: httpx.Response | None = None
        try:
            resp = await client.send(request, stream=True)
        except (httpx.HTTPError, OSError) as exc:
            failure = from_exception(exc, ep.provider)
        if failure is not None or resp is None:
            raise failure or malformed(ep.provider, "no response")
        try:
            async for chunk in _chunks(resp, ep.provider, now):
                yield chunk
        finally:
            await resp.aclose()

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        return await list_model_ids(client, endpoint.url("/models"), _headers(endpoint),
                                    endpoint.provider, timeout_s, now)


async def _chunks(resp: httpx.Response, provider: str,
                  now: dt.datetime) -> AsyncIterator[dict[str, Any]]:
    if resp.status_code >= 300:
        content = await _read(resp, provider)
        raise from_status(resp.status_code, resp.headers, content, provider, now)
    parser = SSEParser()
    finished = False
    received = 0
    text_iter = resp.aiter_text()
    while True:
        failure: UpstreamFailure | None = None
        try:
            text = await anext(text_iter)
        except StopAsyncIteration:
            break
        except (httpx.HTTPError, OSError) as exc:
            failure = from_exception(exc, provider)
        if failure is not None:
            raise failure
        received += len(text)
        if received > MAX_RESPONSE_BYTES:
            raise malformed(provider, f"stream over {MAX_RESPONSE_BYTES} bytes")
        for _event, data in parser.feed(text):
            if data.strip() == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                raise malformed(provider, "stream event is not JSON") from None
            if not isinstance(chunk, dict):
                raise malformed(provider, "stream event is not an object")
            if "error" in chunk:
                raise UpstreamFailure("error", f"{provider}: error event in stream",
                                      body=chunk["error"])
            choices = chunk.get("choices")
            if isinstance(choices, list) and any(
                isinstance(c, dict) and c.get("finish_reason") for c in choices
            ):
                finished = True
            yield chunk
    if not finished:
        raise UpstreamFailure("error", f"{provider}: stream ended before it finished")


async def _read(resp: httpx.Response, provider: str) -> bytes:
    failure: UpstreamFailure | None = None
    content = b""
    try:
        content = await resp.aread()
    except (httpx.HTTPError, OSError) as exc:
        failure = from_exception(exc, provider)
    if failure is not None:
        raise failure
    return content


async def list_model_ids(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                         provider: str, timeout_s: float, now: dt.datetime) -> list[str]:
    """GET a model listing (`{"data": [{"id": ...}, ...]}`) and return the ids."""
    failure: UpstreamFailure | None = None
    try:
        resp = await client.get(url, headers=headers, timeout=timeout_s)
        content = resp.content
    except (httpx.HTTPError, OSError) as exc:
        failure = from_exception(exc, provider)
    if failure is not None:
        raise failure
    if resp.status_code >= 300:
        raise from_status(resp.status_code, resp.headers, content, provider, now)
    try:
        data = json.loads(content)
    except ValueError:
        raise malformed(provider, "model list is not JSON") from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise malformed(provider, "model list has no `data` list")
    return sorted({str(m["id"]) for m in items if isinstance(m, dict)
                   and isinstance(m.get("id"), str)})


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
