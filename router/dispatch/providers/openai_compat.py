"""OpenAI-compatible chat completions: OpenAI, Gemini's OpenAI endpoint, Mistral, DeepSeek, xAI,
Groq, Together, OpenRouter, Fireworks, Cerebras, DeepInfra, vLLM, Ollama, LM Studio.

The body goes out as the caller wrote it (after the hop's mutations); streaming always asks for
the usage chunk (`stream_options.include_usage`) so the call can be priced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx

from router.dispatch.failures import UpstreamFailure, bounded, malformed
from router.dispatch.providers.base import Endpoint, ProviderCall
from router.dispatch.providers.http import (
    drain,
    list_model_ids,
    open_stream,
    parse_json,
    post_json,
    sse_events,
)
from router.dispatch.providers.json_wire import JsonWire


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


class OpenAICompatible(JsonWire):
    """`POST {base}/chat/completions` with a bearer key. Subclasses (Azure, Vertex AI) change
    only where the call goes (`url`), how it is authenticated (`headers`) and the body
    (`prepared`)."""

    wire = "openai"

    def url(self, call: ProviderCall, stream: bool) -> str:
        return call.endpoint.url("/chat/completions")

    def key_headers(self, endpoint: Endpoint) -> dict[str, str]:
        return _headers(endpoint)

    def prepared(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        body = dict(call.body)
        if stream:
            body["stream"] = True
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                      "include_usage": True}
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return body

    async def complete(self, client: httpx.AsyncClient, call: ProviderCall,
                       now: dt.datetime) -> dict[str, Any]:
        ep = call.endpoint
        url, content, headers = await self.request(call, stream=False)
        data = await post_json(client, url, content, headers, call.timeout_s, ep.provider, now)
        return check_completion(data, ep.provider)

    async def stream(self, client: httpx.AsyncClient, call: ProviderCall,
                     now: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        ep = call.endpoint
        url, content, headers = await self.request(call, stream=True)
        resp = await open_stream(client, url, content, headers, call.timeout_s, ep.provider,
                                 now)
        try:
            async for chunk in _chunks(resp, ep.provider):
                yield chunk
        finally:
            await resp.aclose()

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        url = endpoint.url("/models")
        headers = await endpoint.authenticated("GET", url, self.key_headers(endpoint), b"")
        return await list_model_ids(client, url, headers, endpoint.provider, timeout_s, now)


async def _chunks(resp: httpx.Response, provider: str) -> AsyncIterator[dict[str, Any]]:
    finished = False
    events = sse_events(resp, provider)
    async for _event, data in events:
        if data.strip() == "[DONE]":
            await drain(events)
            return
        chunk = parse_json(data, provider, "stream event")
        if not isinstance(chunk, dict):
            raise malformed(provider, "stream event is not an object")
        if "error" in chunk:
            raise UpstreamFailure("error", f"{provider}: error event in stream",
                                  body=bounded(chunk["error"]))
        choices = chunk.get("choices")
        if isinstance(choices, list) and any(
            isinstance(c, dict) and c.get("finish_reason") for c in choices
        ):
            finished = True
        yield chunk
    if not finished:
        raise UpstreamFailure("error", f"{provider}: stream ended before it finished")
