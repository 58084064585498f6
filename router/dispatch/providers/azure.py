"""Azure OpenAI (`azure`) and Azure AI Foundry models (`azure_ai`): the OpenAI wire format at
Azure's URLs, with Azure's `api-key` header (or an Entra ID bearer token, `providers.auth`).

- Azure OpenAI: `POST {resource}/openai/deployments/{deployment}/chat/completions
  ?api-version=…`; the deployment is the offering's `api_model` (its model name unless an
  overlay names the deployment).
- Azure AI Foundry: `POST {resource}/models/chat/completions?api-version=…`, the model in the
  body. (Claude on Foundry speaks Anthropic Messages at `{resource}/anthropic`; the registry
  gives those offerings the Anthropic adapter.)

Azure's content filter answers 400 with `error.code` `content_filter`: that failure stays
`bad_request` (not retried, not failed over: another deployment would filter it too) and its
message names the categories that were filtered.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, cast

import httpx

from router.dispatch.failures import UpstreamFailure
from router.dispatch.providers.base import Batch, Endpoint, ProviderCall
from router.dispatch.providers.openai_compat import OpenAICompatible


def _api_version(endpoint: Endpoint) -> str:
    return "?api-version=" + urllib.parse.quote(endpoint.api_version or "", safe="")


def content_filtered(failure: UpstreamFailure, provider: str) -> UpstreamFailure:
    """A 400 from Azure's content filter, re-worded to say so and which categories struck."""
    body = failure.body
    error = body.get("error") if isinstance(body, Mapping) else None
    if failure.status != 400 or not isinstance(error, Mapping):
        return failure
    if error.get("code") != "content_filter":
        return failure
    inner = error.get("innererror")
    result = inner.get("content_filter_result") if isinstance(inner, Mapping) else None
    struck = []
    if isinstance(result, Mapping):
        for category, verdict in sorted(result.items()):
            if isinstance(verdict, Mapping) and verdict.get("filtered") is True:
                severity = verdict.get("severity")
                struck.append(f"{str(category)[:40]}" +
                              (f" ({str(severity)[:20]})" if isinstance(severity, str) else ""))
    reason = ", ".join(struck) if struck else "no category given"
    return UpstreamFailure("bad_request", f"{provider}: refused by Azure's content filter: "
                                          f"{reason}", status=400, body=body)


class _AzureKeyHeaders(OpenAICompatible):
    def key_headers(self, endpoint: Endpoint) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if endpoint.api_key is not None:
            headers["api-key"] = endpoint.api_key.reveal()
        return headers

    async def complete(self, client: httpx.AsyncClient, call: ProviderCall,
                       now: dt.datetime) -> dict[str, Any]:
        try:
            return await super().complete(client, call, now)
        except UpstreamFailure as exc:
            failure = content_filtered(exc, call.endpoint.provider)
        raise failure

    async def stream_batches(self, client: httpx.AsyncClient, call: ProviderCall,
                             now: dt.datetime) -> AsyncIterator[Batch]:
        try:
            batches = cast(AsyncGenerator[Batch, None],
                           super().stream_batches(client, call, now))
            async with aclosing(batches):
                async for batch in batches:  # closed at once when the caller stops reading
                    yield batch
        except UpstreamFailure as exc:
            failure = content_filtered(exc, call.endpoint.provider)
        else:
            return
        raise failure


class AzureOpenAI(_AzureKeyHeaders):
    wire = "azure"

    def url(self, call: ProviderCall, stream: bool) -> str:
        deployment = urllib.parse.quote(call.api_model, safe="")
        return call.endpoint.url(f"/openai/deployments/{deployment}/chat/completions"
                                 + _api_version(call.endpoint))

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        raise UpstreamFailure("bad_request", f"{endpoint.provider}: deployments are not "
                                             "listed through the data-plane API")


class AzureAIModels(_AzureKeyHeaders):
    wire = "azure_ai"

    def url(self, call: ProviderCall, stream: bool) -> str:
        return call.endpoint.url("/models/chat/completions" + _api_version(call.endpoint))

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        raise UpstreamFailure("bad_request", f"{endpoint.provider}: deployments are not "
                                             "listed through the data-plane API")
