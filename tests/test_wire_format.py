"""What `complete` returns is the OpenAI wire format, checked with the official `openai` SDK's
own types — for an OpenAI-compatible provider and for Anthropic translated — including tool
calls, usage and streamed chunks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from router.config import RouterConfig
from router.dispatch.completion import Completion, CompletionStream
from router.facade import Router
from tests.dispatch_support import policy, request
from tests.fakes import FakeProvider, ok, status, tool_call

ONLY_CLAUDE = policy(filters=[["==", "provider", "anthropic"]])


def test_openai_passthrough_is_a_chat_completion(router: Router,
                                                 fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", ok("hi", usage=(5, 1),
                                         tool_calls=[tool_call("f", {"a": 1})]))
    done = router.complete_sync(policy(), request())
    assert isinstance(done, Completion)
    parsed = ChatCompletion.model_validate(done.response)
    assert parsed.choices[0].message.tool_calls is not None
    assert parsed.choices[0].message.tool_calls[0].function.name == "f"


def test_anthropic_translated_is_a_chat_completion(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[1].script_for("claude-x-20260101",
                        ok("let me look", usage=(11, 4), cached=3,
                           tool_calls=[tool_call("lookup", {"q": "x"}, id="toolu_1")]))
    done = router.complete_sync(ONLY_CLAUDE, request(tools=[{
        "type": "function", "function": {"name": "lookup", "parameters": {
            "type": "object", "properties": {"q": {"type": "string"}}}}}]))
    assert isinstance(done, Completion)
    parsed = ChatCompletion.model_validate(done.response)
    choice = parsed.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "let me look"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id == "toolu_1" and call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"q": "x"}
    assert parsed.usage is not None and parsed.usage.prompt_tokens == 14
    assert parsed.usage.prompt_tokens_details is not None
    assert parsed.usage.prompt_tokens_details.cached_tokens == 3
    sent = fakes[1].requests[0].json
    assert sent["tools"][0]["name"] == "lookup" and "input_schema" in sent["tools"][0]


def _chunks(router: Router, pol: list[Any], req: dict[str, Any]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        try:
            stream = await router.stream(pol, req)
            assert isinstance(stream, CompletionStream)
            return [c async for c in stream]
        finally:
            await router.aclose()

    return asyncio.run(run())


def test_streamed_chunks_are_chat_completion_chunks(
        router: Router, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    fakes[0].script_for("cheap-2026", status(500))  # winner fails: the stream comes from mid
    fakes[0].script_for("mid", ok("one two", usage=(3, 2), chunks=2))
    openai_chunks = _chunks(router, policy(),
                            request(stream=True, stream_options={"include_usage": True}))
    fakes[1].script_for("claude-x-20260101", ok("trois quatre", usage=(3, 2), chunks=2))
    anthropic_chunks = _chunks(router, ONLY_CLAUDE,
                               request(stream=True, stream_options={"include_usage": True}))
    for chunks in (openai_chunks, anthropic_chunks):
        parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
        assert parsed[-1].usage is not None and parsed[-1].usage.completion_tokens == 2
        finishes = [c.choices[0].finish_reason for c in parsed if c.choices]
        assert finishes[-1] == "stop"


def test_a_private_deployment_from_an_overlay_is_called_at_its_base_url(
        tmp_path: Any, fakes: tuple[FakeProvider, FakeProvider]) -> None:
    """An operator overlay adds a local vLLM; the router calls it there, with no key."""
    from tests.dispatch_support import catalog

    with FakeProvider(models=["my-llama"]) as vllm:
        cat = tmp_path / "catalog.json"
        cat.write_text(json.dumps(catalog().to_json()))
        overlay = tmp_path / "ops.toml"
        overlay.write_text(
            "schema = 1\n[[offerings]]\n"
            'id = "vllm/onprem/llama"\nmodel = "llama"\nprovider = "vllm"\nregion = "eu"\n'
            'api_model = "my-llama"\ncontext_window = 32000\nmax_output_tokens = 4096\n'
            'capabilities = ["streaming"]\n'
            f'base_url = "{vllm.base_url}/v1"\n')
        router = Router(cat, overlays=[overlay], config=RouterConfig(environ={}))
        done = router.complete_sync(policy(filters=[["==", "region", "eu"]]), request())
        assert isinstance(done, Completion) and done.served_by == "vllm/onprem/llama"
        sent = vllm.requests[0]
        assert sent.path == "/v1/chat/completions" and sent.json["model"] == "my-llama"
        assert "authorization" not in sent.headers
        assert done.record()["catalog_version"] == router.catalog.version
        router.close()
