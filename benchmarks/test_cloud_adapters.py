"""The CPU a call costs in the Bedrock adapter (Converse translation both ways and SigV4
signing) and the Azure adapter, against the OpenAI-compatible adapter doing the same call:
building the request (body, URL, headers, signature) and turning the provider's answer into a
`chat.completion`. No network: the same answer bytes are parsed each round, so the difference is
the adapters' own work.

Run: python -m pytest benchmarks/test_cloud_adapters.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from router.dispatch.providers.base import Endpoint, ProviderCall
from router.dispatch.providers.bedrock import BedrockConverse, response_id
from router.dispatch.providers.bedrock_translate import from_converse
from router.dispatch.providers.clouds import resolve_cloud
from router.dispatch.providers.openai_compat import OpenAICompatible, check_completion
from router.dispatch.providers.registry import resolve

BODY: dict[str, Any] = {"model": "router", "max_tokens": 200, "temperature": 0.2, "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Summarise: " + "lorem ipsum dolor sit amet " * 40}]}
ENV = {"AWS_ACCESS_KEY_ID": "AKIDBENCH0001", "AWS_SECRET_ACCESS_KEY": "bench/secret",
       "AZURE_EU_BASE_URL": "https://bench.openai.azure.com", "AZURE_EU_API_KEY": "k" * 32,
       "OPENAI_API_KEY": "sk-bench"}
OPENAI_ANSWER = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "A short summary. " * 8}}],
    "usage": {"prompt_tokens": 230, "completion_tokens": 40, "total_tokens": 270}}).encode()
CONVERSE_ANSWER = json.dumps({
    "output": {"message": {"role": "assistant", "content": [{"text": "A short summary. " * 8}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 230, "outputTokens": 40, "totalTokens": 270},
    "metrics": {"latencyMs": 300}}).encode()


def _call(endpoint: Endpoint, api_model: str) -> ProviderCall:
    return ProviderCall("x/y", api_model, {**BODY, "model": api_model}, endpoint, 30.0)


@pytest.fixture(scope="module")
def calls() -> dict[str, ProviderCall]:
    openai_ep = resolve("openai", ENV)
    bedrock_ep = resolve_cloud("bedrock", "eu", "eu.amazon.nova-lite-v1:0", ENV, None)
    azure_ep = resolve_cloud("azure", "eu", "gpt-5-nano", ENV, None)
    assert isinstance(openai_ep, Endpoint)
    return {"openai": _call(openai_ep, "gpt-4o-mini"),
            "bedrock": _call(bedrock_ep, "eu.amazon.nova-lite-v1:0"),
            "azure": _call(azure_ep, "gpt-5-nano")}


def _loop_rounds(fn: Any, n: int = 200) -> None:
    """`n` request builds + answer parses on one event loop (the adapters' async `_request`)."""
    async def go() -> None:
        for _ in range(n):
            await fn()
    asyncio.run(go())


def test_openai_compatible_adapter(benchmark: Any, calls: dict[str, ProviderCall]) -> None:
    adapter, call = OpenAICompatible(), calls["openai"]

    async def one() -> None:
        await adapter.request(call, stream=False)
        check_completion(json.loads(OPENAI_ANSWER), "openai")
    benchmark(_loop_rounds, one)


def test_azure_adapter(benchmark: Any, calls: dict[str, ProviderCall]) -> None:
    from router.dispatch.providers.azure import AzureOpenAI
    adapter, call = AzureOpenAI(), calls["azure"]

    async def one() -> None:
        await adapter.request(call, stream=False)
        check_completion(json.loads(OPENAI_ANSWER), "azure")
    benchmark(_loop_rounds, one)


def test_bedrock_adapter(benchmark: Any, calls: dict[str, ProviderCall]) -> None:
    adapter, call = BedrockConverse(), calls["bedrock"]
    now = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)

    async def one() -> None:
        await adapter.request(call, stream=False)
        from_converse(json.loads(CONVERSE_ANSWER), "router", 1, response_id(call, now))
    benchmark(_loop_rounds, one)


def test_sigv4_alone(benchmark: Any, calls: dict[str, ProviderCall]) -> None:
    ep = calls["bedrock"].endpoint
    assert ep.auth is not None
    url = ep.url("/model/eu.amazon.nova-lite-v1%3A0/converse")
    body = json.dumps(BODY).encode()

    async def one() -> None:
        await ep.authenticated("POST", url, {"content-type": "application/json"}, body)
    benchmark(_loop_rounds, one)

