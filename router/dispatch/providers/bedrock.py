"""AWS Bedrock: the Converse and ConverseStream APIs (`POST {base}/model/{modelId}/converse`,
`…/converse-stream`), translated to and from OpenAI chat completions by
`router.dispatch.providers.bedrock_translate`, signed with SigV4 (`providers.auth`, botocore's
signer and credential chain) and sent over the router's own httpx pool.

The model id is the offering's `api_model` (`eu.amazon.nova-lite-v1:0`: an EU inference
profile), URL-encoded into the path. ConverseStream answers in AWS's binary event-stream
framing, decoded by botocore's `EventStreamBuffer` and bounded like every other stream (the
whole stream to `MAX_RESPONSE_BYTES`, one message to `MAX_EVENT_CHARS`). An exception message
in the stream (`throttlingException`, `modelStreamErrorException`, …) fails the attempt with its
kind: throttling and unavailability are `rate_limit`, the rest `error`.

botocore is the `aws` extra; this module imports it only when a call is made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx

from router.dispatch.failures import (
    MAX_ERROR_BODY_CHARS,
    FailureKind,
    UpstreamFailure,
    malformed,
)
from router.dispatch.http1 import close_response
from router.dispatch.providers.base import Endpoint, ProviderCall
from router.dispatch.providers.bedrock_translate import (
    ConverseStreamTranslator,
    StreamError,
    TranslationError,
    from_converse,
    stream_exception,
    to_converse,
)
from router.dispatch.providers.http import (
    MAX_EVENT_CHARS,
    drain,
    open_stream,
    parse_json,
    post_json,
    stream_chunks,
)
from router.dispatch.providers.json_wire import JsonWire

RATE_LIMITED = frozenset({"throttlingException", "serviceUnavailableException"})


def _url(call: ProviderCall, verb: str) -> str:
    model = urllib.parse.quote(call.api_model, safe="")
    return call.endpoint.url(f"/model/{model}/{verb}")


def _headers(stream: bool) -> dict[str, str]:
    return {"content-type": "application/json",
            "accept": "application/vnd.amazon.eventstream" if stream else "application/json"}


def response_id(call: ProviderCall, now: dt.datetime) -> str:
    """Converse answers carry no id; ours is a digest of the call and its time."""
    seed = f"{call.offering_id}|{now.isoformat()}|{id(call)}".encode()
    return "chatcmpl-bedrock-" + hashlib.sha256(seed).hexdigest()[:24]


def _request_body(call: ProviderCall) -> dict[str, Any]:
    failure: UpstreamFailure | None = None
    try:
        body = to_converse(call.body)
    except TranslationError as exc:
        failure = UpstreamFailure("bad_request", f"request cannot be sent to bedrock: {exc}",
                                  body={"pointer": exc.pointer, "message": exc.message})
    if failure is not None:
        raise failure
    return body


class BedrockConverse(JsonWire):
    wire = "bedrock"

    def url(self, call: ProviderCall, stream: bool) -> str:
        return _url(call, "converse-stream" if stream else "converse")

    def headers(self, endpoint: Endpoint, stream: bool) -> dict[str, str]:
        return _headers(stream)

    def prepared(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        return _request_body(call)

    async def complete(self, client: httpx.AsyncClient, call: ProviderCall,
                       now: dt.datetime) -> dict[str, Any]:
        ep = call.endpoint
        url, content, headers = await self.request(call, stream=False)
        data = await post_json(client, url, content, headers, call.timeout_s, ep.provider, now)
        if not isinstance(data, dict):
            raise malformed(ep.provider, "body is not a JSON object")
        try:
            return from_converse(data, str(call.body.get("model") or call.api_model),
                                 int(now.timestamp()), response_id(call, now))
        except TranslationError as exc:
            raise malformed(ep.provider, f"{exc.message} at {exc.pointer}") from None

    async def stream(self, client: httpx.AsyncClient, call: ProviderCall,
                     now: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        ep = call.endpoint
        url, content, headers = await self.request(call, stream=True)
        resp = await open_stream(client, url, content, headers, call.timeout_s, ep.provider,
                                 now)
        translator = ConverseStreamTranslator(str(call.body.get("model") or call.api_model),
                                              int(now.timestamp()), response_id(call, now),
                                              include_usage=True)
        try:
            events = event_stream(resp, ep.provider)
            async for event_type, payload in events:
                try:
                    chunks = translator.feed(event_type, payload)
                except TranslationError as exc:
                    raise malformed(ep.provider, f"{exc.message} at {exc.pointer}") from None
                for chunk in chunks:
                    yield chunk
                if translator.done:
                    await drain(events, resp)
                    return
            if not translator.stopped:  # `metadata` (usage) may be missing; `messageStop` not
                raise UpstreamFailure("error", f"{ep.provider}: stream ended before it finished")
        finally:
            await close_response(resp)

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        raise UpstreamFailure("bad_request", f"{endpoint.provider}: models are not listed "
                                             "through the runtime API")


def _stream_failure(provider: str, exception_type: str, payload: Any) -> UpstreamFailure:
    error: StreamError = stream_exception(exception_type,
                                          payload if isinstance(payload, dict) else {})
    kind: FailureKind = "rate_limit" if exception_type in RATE_LIMITED else "error"
    return UpstreamFailure(kind, f"{provider}: exception in stream ({exception_type[:100]})",
                           body={"type": exception_type[:100],
                                 "message": error.message[:MAX_ERROR_BODY_CHARS]})


async def event_stream(resp: httpx.Response, provider: str
                       ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The events of an AWS event stream as (`:event-type`, JSON payload), bounded; an
    exception or error message raises `UpstreamFailure`."""
    from botocore.eventstream import EventStreamBuffer, ParserError

    buffer = EventStreamBuffer()
    pending = 0  # bytes of the message being received
    async for data in stream_chunks(resp, provider):
        failure: UpstreamFailure | None = None
        pending += len(data)
        buffer.add_data(data)
        messages = []
        try:
            for message in buffer:
                pending -= message.prelude.total_length
                messages.append(message)
        except ParserError as exc:
            failure = malformed(provider, f"event stream is not well formed "
                                          f"({type(exc).__name__})")
        if failure is not None:
            raise failure
        if pending > MAX_EVENT_CHARS:
            raise malformed(provider, f"stream event over {MAX_EVENT_CHARS} bytes")
        for message in messages:
            yield _event(message, provider)


def _event(message: Any, provider: str) -> tuple[str, dict[str, Any]]:
    headers = message.headers
    kind = str(headers.get(":message-type", "event"))
    if kind == "error":
        code = str(headers.get(":error-code", "error"))[:100]
        raise UpstreamFailure("error", f"{provider}: error in stream ({code})",
                              body={"type": code, "message": str(
                                  headers.get(":error-message", ""))[:MAX_ERROR_BODY_CHARS]})
    payload = parse_json(message.payload or b"{}", provider, "stream event")
    if kind == "exception":
        raise _stream_failure(provider, str(headers.get(":exception-type", "exception")),
                              payload)
    if not isinstance(payload, dict):
        raise malformed(provider, "stream event is not an object")
    return str(headers.get(":event-type", "")), payload

