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
from router.dispatch.http1 import close_response
from router.dispatch.providers.base import Batch, Endpoint, ProviderCall, unbatched
from router.dispatch.providers.http import (
    drain,
    list_model_ids,
    open_stream,
    parse_json,
    post_json,
    sse_batches,
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

    def stream(self, client: httpx.AsyncClient, call: ProviderCall,
               now: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        return unbatched(self.stream_batches(client, call, now))

    async def stream_batches(self, client: httpx.AsyncClient, call: ProviderCall,
                             now: dt.datetime) -> AsyncIterator[Batch]:
        ep = call.endpoint
        url, content, headers = await self.request(call, stream=True)
        resp = await open_stream(client, url, content, headers, call.timeout_s, ep.provider,
                                 now)
        try:
            async for batch in _batches(resp, ep.provider):
                yield batch
        finally:
            await close_response(resp)

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        url = endpoint.url("/models")
        headers = await endpoint.authenticated("GET", url, self.key_headers(endpoint), b"")
        return await list_model_ids(client, url, headers, endpoint.provider, timeout_s, now)


async def _batches(resp: httpx.Response, provider: str) -> AsyncIterator[Batch]:
    """The chunks of each batch of events; `[DONE]` ends the stream (what follows it is
    drained, not read); a bad event raises after the chunks before it were yielded."""
    finished = False
    events = sse_batches(resp, provider)
    async for batch in events:
        chunks: Batch = []
        for _event, data in batch:
            if data.strip() == "[DONE]":
                if chunks:
                    yield chunks
                await drain(events, resp)
                return
            try:
                chunk = _chunk(data, provider)
            except UpstreamFailure:
                if chunks:
                    yield chunks
                raise
            choices = chunk.get("choices")
            if isinstance(choices, list) and any(
                isinstance(c, dict) and c.get("finish_reason") for c in choices
            ):
                finished = True
            chunks.append(chunk)
        yield chunks
    if not finished:
        raise UpstreamFailure("error", f"{provider}: stream ended before it finished")


def _chunk(data: str, provider: str) -> dict[str, Any]:
    chunk = parse_json(data, provider, "stream event")
    if not isinstance(chunk, dict):
        raise malformed(provider, "stream event is not an object")
    if "error" in chunk:
        raise UpstreamFailure("error", f"{provider}: error event in stream",
                              body=bounded(chunk["error"]))
    return chunk
