"""Google Vertex AI: three wire formats behind one bearer token (`providers.auth`), all under
`{base}/v1/projects/{project}/locations/{location}/`:

- Gemini and the open models (Llama, Qwen, DeepSeek, gpt-oss, … as `publisher/model-maas`):
  the OpenAI-compatible `endpoints/openapi/chat/completions`; Gemini's model is sent as
  `google/<model>`.
- Claude: Anthropic Messages through `publishers/anthropic/models/{model}:rawPredict`
  (`:streamRawPredict` for streams); the model goes in the URL, not the body, and the body
  carries `anthropic_version: vertex-2023-10-16`.
- Mistral (and Codestral) and AI21 Jamba: their publisher's `rawPredict` /
  `streamRawPredict` with an OpenAI-shaped body.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import httpx

from router.dispatch.failures import UpstreamFailure
from router.dispatch.providers.anthropic import AnthropicMessages
from router.dispatch.providers.base import Endpoint, ProviderCall
from router.dispatch.providers.clouds import VERTEX_ANTHROPIC_VERSION, vertex_path
from router.dispatch.providers.openai_compat import OpenAICompatible


def _json_headers(endpoint: Endpoint) -> dict[str, str]:
    return {"content-type": "application/json", "accept": "application/json"}


def _no_listing(endpoint: Endpoint) -> UpstreamFailure:
    return UpstreamFailure("bad_request", f"{endpoint.provider}: models are not listed "
                                          "through the prediction API")


def publisher_model(api_model: str) -> str:
    """The model as the OpenAI-compatible endpoint names it: `publisher/model`."""
    return api_model if "/" in api_model else "google/" + api_model


class VertexOpenAI(OpenAICompatible):
    wire = "vertex_openai"

    def url(self, call: ProviderCall, stream: bool) -> str:
        return vertex_path(call.endpoint, "endpoints/openapi/chat/completions")

    def key_headers(self, endpoint: Endpoint) -> dict[str, str]:
        return _json_headers(endpoint)

    def prepared(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        body = super().prepared(call, stream)
        body["model"] = publisher_model(call.api_model)
        return body

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        raise _no_listing(endpoint)


def _publisher(api_model: str) -> str:
    return "ai21" if api_model.startswith("jamba") else "mistralai"


class VertexPublisher(OpenAICompatible):
    wire = "vertex_publisher"

    def url(self, call: ProviderCall, stream: bool) -> str:
        model = urllib.parse.quote(call.api_model, safe="@")
        verb = "streamRawPredict" if stream else "rawPredict"
        return vertex_path(call.endpoint,
                           f"publishers/{_publisher(call.api_model)}/models/{model}:{verb}")

    def key_headers(self, endpoint: Endpoint) -> dict[str, str]:
        return _json_headers(endpoint)

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        raise _no_listing(endpoint)


class VertexAnthropic(AnthropicMessages):
    wire = "vertex_anthropic"

    def url(self, call: ProviderCall, stream: bool) -> str:
        model = urllib.parse.quote(call.api_model, safe="@")
        verb = "streamRawPredict" if stream else "rawPredict"
        return vertex_path(call.endpoint, f"publishers/anthropic/models/{model}:{verb}")

    def key_headers(self, endpoint: Endpoint) -> dict[str, str]:
        return _json_headers(endpoint)

    def prepared(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        body = super().prepared(call, stream)
        body.pop("model", None)
        body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        return body

    async def list_models(self, client: httpx.AsyncClient, endpoint: Endpoint,
                          timeout_s: float, now: dt.datetime) -> list[str]:
        raise _no_listing(endpoint)
