"""Anthropic Messages (`POST /v1/messages`), translated to and from OpenAI chat completions by
`router.dispatch.providers.anthropic_translate`."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx

from router.dispatch.failures import MAX_ERROR_BODY_CHARS, UpstreamFailure, malformed
from router.dispatch.http1 import close_response
from router.dispatch.providers.anthropic_translate import (
    AnthropicStreamTranslator,
    StreamError,
    TranslationError,
    from_anthropic,
    to_anthropic,
)
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

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096


def _headers(endpoint: Endpoint) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json",
               "anthropic-version": API_VERSION}
    if endpoint.api_key is not None:
        headers["x-api-key"] = endpoint.api_key.reveal()
    return headers


def _messages_url(endpoint: Endpoint) -> str:
    base = endpoint.base_url.rstrip("/")
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


def _request_body(call: ProviderCall, stream: bool) -> dict[str, Any]:
    failure: UpstreamFailure | None = None
    try:
        body = to_anthropic(call.body, call.api_model, DEFAULT_MAX_TOKENS)
    except TranslationError as exc:
        failure = UpstreamFailure("bad_request",
                                  f"request cannot be sent to anthropic: {exc}",
                                  body={"pointer": exc.pointer, "message": exc.message})
    if failure is not None:
        raise failure
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


class AnthropicMessages(JsonWire):
    """`POST {base}/v1/messages` with `x-api-key`. Subclasses (Anthropic on Vertex AI) change
    only where the call goes (`url`), how it is authenticated (`key_headers` and the
    endpoint's `auth`) and the body (`prepared`)."""

    wire = "anthropic"

    def url(self, call: ProviderCall, stream: bool) -> str:
        return _messages_url(call.endpoint)

    def key_headers(self, endpoint: Endpoint) -> dict[str, str]:
        return _headers(endpoint)

    def prepared(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        return _request_body(call, stream)

    async def complete(self, client: httpx.AsyncClient, call: ProviderCall,
                       now: dt.datetime) -> dict[str, Any]:
        ep = call.endpoint
        url, content, headers = await self.request(call, stream=False)
        data = await post_json(client, url, content, headers, call.timeout_s, ep.provider, now)
        try:
            return from_anthropic(data, str(call.body.get("model") or call.api_model),
                                  int(now.timestamp()))
        except TranslationError as exc:
            raise malformed(ep.provider, f"{exc.message} at {exc.pointer}") from None

    async def stream(self, client: httpx.AsyncClient, call: ProviderCall,
                     now: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        ep = call.endpoint
        url, content, headers = await self.request(call, stream=True)
        resp = await open_stream(client, url, content, headers, call.timeout_s, ep.provider,
                                 now)
        translator = AnthropicStreamTranslator(str(call.body.get("model") or call.api_model),
                                               int(now.timestamp()), include_usage=True)
        try:
            async for chunk in _translated(resp, translator, ep.provider):
                yield chunk
        finally:
            await close_response(resp)

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        base = endpoint.base_url.rstrip("/")
        url = base + ("/models" if base.endswith("/v1") else "/v1/models")
        return await list_model_ids(client, url + "?limit=1000", _headers(endpoint),
                                    endpoint.provider, timeout_s, now)


async def _translated(resp: httpx.Response, translator: AnthropicStreamTranslator,
                      provider: str) -> AsyncIterator[dict[str, Any]]:
    events = sse_events(resp, provider)
    async for event, data in events:
        payload = parse_json(data, provider, f"stream event `{event[:40]}`")
        if not isinstance(payload, dict):
            raise malformed(provider, f"stream event `{event[:40]}` is not an object")
        try:
            chunks = translator.feed(event, payload)
        except TranslationError as exc:
            raise malformed(provider, f"{exc.message} at {exc.pointer}") from None
        except StreamError as exc:
            kind = exc.type[:100]
            raise UpstreamFailure(_stream_error_kind(kind),
                                  f"{provider}: error event in stream ({kind})",
                                  body={"type": kind,
                                        "message": exc.message[:MAX_ERROR_BODY_CHARS]}) from None
        for chunk in chunks:
            yield chunk
        if event == "message_stop":
            await drain(events, resp)
            return
    raise UpstreamFailure("error", f"{provider}: stream ended before message_stop")


def _stream_error_kind(error_type: str) -> Any:
    if error_type in ("overloaded_error", "rate_limit_error"):
        return "rate_limit"
    return "error"


class MantleAnthropic(AnthropicMessages):
    """Claude on Bedrock Mantle: Anthropic Messages at `{base}/v1/messages`, the Bedrock API
    key sent as a bearer token."""

    wire = "mantle_anthropic"

    def key_headers(self, endpoint: Endpoint) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json",
                   "anthropic-version": API_VERSION}
        if endpoint.api_key is not None:
            headers["authorization"] = "Bearer " + endpoint.api_key.reveal()
        return headers
