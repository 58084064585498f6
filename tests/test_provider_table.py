"""The one table of OpenAI-compatible providers (`registry.SPECS`): sound defaults, one owner
per key variable, documented, callable end to end; and the embedded catalog's callable share."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from router.catalog.offerings import base_url_problem, build_catalog
from router.cli.main import main
from router.config import RouterConfig
from router.dispatch.providers.base import Endpoint
from router.dispatch.providers.registry import SPECS, Unreachable, resolve, static_unreachable
from router.facade import Router
from tests.fakes import FakeProvider, ok

DOCS = Path(__file__).resolve().parents[1] / "docs" / "dispatch.md"


def test_each_key_variable_belongs_to_one_provider() -> None:
    """A key goes only to the endpoint its variable is paired with, so no two providers may
    claim one variable."""
    owners: dict[str, str] = {}
    for spec in SPECS.values():
        for variable in spec.key_vars:
            assert variable not in owners, (variable, owners.get(variable), spec.name)
            owners[variable] = spec.name


def test_every_default_base_url_is_a_usable_https_url() -> None:
    for spec in SPECS.values():
        if spec.base_url is not None:
            assert spec.base_url.startswith("https://"), spec.name
            assert base_url_problem(spec.base_url) is None, spec.name


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_provider_resolves_with_its_key(name: str) -> None:
    spec = SPECS[name]
    env = {spec.key_vars[0]: "k-0123456789"} if spec.key_vars else {}
    target = resolve(name, env)
    if spec.base_url is None:
        assert isinstance(target, Unreachable) and target.status == "no_key"
        assert f"{name.upper().replace('-', '_')}_BASE_URL" in target.reason
        env["X"] = "1"
        env[f"{name.upper().replace('-', '_')}_BASE_URL"] = "https://example.test/v1"
        target = resolve(name, env)
    assert isinstance(target, Endpoint), target
    assert target.wire == spec.wire
    if spec.key_required:
        assert target.api_key is not None and target.api_key.reveal() == "k-0123456789"


def test_every_provider_in_the_table_is_documented() -> None:
    text = DOCS.read_text("utf-8")
    missing = [name for name in SPECS if f"`{name}`" not in text]
    assert missing == []


def test_a_long_tail_provider_is_called_end_to_end() -> None:
    with FakeProvider(api_key="nv-key-0123456789") as fake:
        fake.script(ok("from novita", usage=(5, 2)))
        cat = build_catalog({"schema": 1, "source": "t", "offerings": [{
            "id": "novita/llama", "model": "llama", "provider": "novita", "region": "global",
            "context_window": 8000, "input_price": 0.1, "output_price": 0.2,
            "max_output_tokens": 1000, "capabilities": ["streaming"],
            "api_model": "meta-llama/llama-3.3-70b-instruct"}]})
        env = {"NOVITA_API_KEY": "nv-key-0123456789", "NOVITA_BASE_URL": fake.base_url + "/v1"}
        pol: list[Any] = ["policy", ["ev_zero"], ["filter"], ["rank"], ["select", ["first"]],
                          ["mutate"], ["fallback"]]

        async def go() -> Any:
            router = Router(cat, config=RouterConfig(environ=env, records=None))
            try:
                return await router.complete(pol, {"messages": [{"role": "user",
                                                                 "content": "hi"}]})
            finally:
                await router.aclose()
        done = asyncio.run(go())
        assert done.response["choices"][0]["message"]["content"] == "from novita"
        sent = fake.requests[0]
        assert sent.path == "/v1/chat/completions"
        assert sent.json["model"] == "meta-llama/llama-3.3-70b-instruct"
        assert sent.headers["authorization"] == "Bearer nv-key-0123456789"


def test_catalog_stats_shows_callability_per_provider(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    assert main(["catalog", "stats", "--json"]) == 0
    calls = json.loads(capsys.readouterr().out)["callability"]
    assert calls["offerings"] == 3189
    assert calls["callable_share"] >= 0.90
    assert calls["callable"] == 3005  # the figure docs/dispatch.md and benchmarks/README give
    by = calls["by_provider"]
    assert by["bedrock"]["callable"] == by["bedrock"]["offerings"] == 342
    assert by["replicate"]["callable"] == 0
    assert "no adapter for provider `replicate`" in by["replicate"]["reason"]
    assert sum(p["callable"] for p in by.values()) == calls["callable"]
    assert main(["catalog", "stats", "--top", "5"]) == 0
    text = capsys.readouterr().out
    assert "callable by this installation: " in text and "why not" in text


def test_catalog_stats_live_counts_what_the_environment_configures(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(__import__("os").environ):
        if name.endswith(("_API_KEY", "_BASE_URL", "_TOKEN")) or name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-0123456789")
    assert main(["catalog", "stats", "--json", "--live"]) == 0
    by = json.loads(capsys.readouterr().out)["callability"]["by_provider"]
    assert by["openai"]["configured"] == by["openai"]["offerings"]
    assert by["mistral"]["configured"] == 0
    assert by["mistral"]["missing"] == "no key: set MISTRAL_API_KEY"


def test_static_callability_is_no_adapter_or_a_missing_extra() -> None:
    assert static_unreachable("openai") is None
    assert static_unreachable("bedrock") is None  # botocore is installed for the tests
    missing = static_unreachable("oci")
    assert missing is not None and missing.status == "unsupported"
    assert missing.reason == "no adapter for provider `oci` in this router"
