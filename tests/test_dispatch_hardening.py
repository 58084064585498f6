"""Hardening of dispatch (issue 11, findings 3, 5, 7, 13, 14 and 17): each test replays the
attack against real loopback servers and checks the documented outcome."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from router.catalog.offerings import Catalog, build_catalog
from router.common.problems import CatalogError, RequestError
from router.config import RouterConfig
from router.dispatch.completion import CascadeExhausted, NoAdmissibleOffering, ProviderRejected
from router.dispatch.failures import UpstreamFailure, scrubbed
from router.facade import Router
from router.request.features import MAX_REQUEST_BYTES, parse_request
from tests.dispatch_support import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    Clock,
    offering,
    policy,
    request,
)
from tests.fakes import FakeProvider, ok, raw

ROOT = Path(__file__).resolve().parents[1]
OPENAI_ONLY = policy(cascade=0, filters=[["in", "provider", ["openai"]]])
ANTHROPIC_ONLY = policy(cascade=0, filters=[["in", "provider", ["anthropic"]]])


def outcomes(record: dict[str, Any]) -> list[tuple[str, int, str, int | None]]:
    return [(a["offering"], a["retry"], a["outcome"], a["status"]) for a in record["attempts"]]


def router_over(offerings: list[dict[str, Any]], env: dict[str, str],
                overlays: tuple[Path, ...] = ()) -> Router:
    cat: Catalog = build_catalog({"schema": 1, "source": "hardening tests",
                                  "offerings": offerings})
    clock = Clock()
    ids = iter(f"trace-{i}" for i in range(1_000_000))
    config = RouterConfig(clock=clock, trace_ids=lambda: next(ids), environ=env,
                          sleep=clock.sleep, rng=random.Random(7))
    return Router(cat, overlays=overlays, config=config)


def complete(router: Router, pol: list[Any], req: dict[str, Any]) -> Any:
    async def go() -> Any:
        try:
            return await router.complete(pol, req)
        finally:
            await router.aclose()
    return asyncio.run(go())


def stream(router: Router, pol: list[Any], req: dict[str, Any]) -> Any:
    async def go() -> Any:
        try:
            s = await router.stream(pol, req)
            return [c async for c in s], s
        finally:
            await router.aclose()
    return asyncio.run(go())


@pytest.fixture()
def attacker() -> Iterator[FakeProvider]:
    """A server that answers every request (no key check) and records what it was sent."""
    with FakeProvider() as fp:
        yield fp


# -- finding 3: provider bodies are read as streams and cut at the limit ----------------------

MEMORY_PROBE = r'''
import asyncio, json, resource
from router.dispatch.completion import CascadeExhausted
from router.live.health import BreakerSettings
from tests.dispatch_support import (ANTHROPIC_KEY, OPENAI_KEY, Clock, environ, make_router,
                                    policy, request)
from tests.fakes import FakeProvider, raw

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

BLOCK, TIMES = b"[" * 65536, 4096  # 256 MiB, eight times the 32 MiB limit
SCENARIOS = [  # the endless line first: its own peak is measured alone
    ("stream: one endless line", raw(200, b"x" * 65536, repeat=TIMES, framing="chunked",
                                     content_type="text/event-stream"), True),
    ("complete: 200, chunked", raw(200, BLOCK, repeat=TIMES, framing="chunked"), False),
    ("complete: 200, close-delimited", raw(200, BLOCK, repeat=TIMES, framing="close"), False),
    ("complete: 500, chunked", raw(500, BLOCK, repeat=TIMES, framing="chunked"), False),
    ("stream: 500, chunked", raw(500, BLOCK, repeat=TIMES, framing="chunked"), True),
]
POLICY = policy(cascade=0, filters=[["in", "provider", ["openai"]]])

async def main():
    out = {}
    with FakeProvider(api_key=OPENAI_KEY) as oa, \
            FakeProvider(api_key=ANTHROPIC_KEY, style="anthropic") as an:
        router = make_router(environ(oa.base_url, an.base_url), Clock(),
                             breaker=BreakerSettings(failure_threshold=100))
        try:
            await router.complete(POLICY, request())  # warm up: imports, derivation, pool
            [c async for c in await router.stream(POLICY, request())]
            base = peak_mib()
            for name, step, streamed in SCENARIOS:
                oa.script(step)
                try:
                    if streamed:
                        [c async for c in await router.stream(POLICY, request())]
                    else:
                        await router.complete(POLICY, request())
                    result = {"outcome": "ok"}
                except CascadeExhausted as e:
                    result = {"attempts": e.record["attempts"],
                              "provider_error": e.record["error"]["provider_error"]}
                result["peak_growth_mib"] = peak_mib() - base
                out[name] = result
        finally:
            await router.aclose()
            router.close()
    print(json.dumps(out))

asyncio.run(main())
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB (Linux)")
def test_huge_provider_bodies_are_cut_at_the_limit_and_memory_stays_bounded() -> None:
    """A 256 MiB answer (success, error, stream) costs at most about the 32 MiB limit, not the
    whole body: measured as growth of the peak RSS of a fresh process. Before the fix the
    same run grew by 744 to 1512 MiB; after it, by about 33 MiB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    results = json.loads(done.stdout)
    growth = {name: round(r["peak_growth_mib"], 1) for name, r in results.items()}
    assert max(growth.values()) < 96, growth
    assert growth["stream: one endless line"] < 8, growth  # one event is bounded too
    for name, result in results.items():
        [attempt] = result["attempts"]  # one attempt, recorded, with a documented outcome
        assert attempt["offering"] == "openai/cheap" and attempt["outcome"] == "error", name
        if "500" in name:
            assert attempt["status"] == 500
            assert isinstance(result["provider_error"], str)  # kept as its first characters
            assert len(result["provider_error"]) <= 4096
        else:
            assert "malformed response" in attempt["detail"], name
    line = results["stream: one endless line"]
    assert "stream event over 1048576 characters" in line["attempts"][0]["detail"]
    assert "body over 33554432 bytes" in results["complete: 200, chunked"]["attempts"][0][
        "detail"]


def test_a_declared_length_over_the_limit_is_refused_without_reading_it(
        fakes: tuple[FakeProvider, FakeProvider], router: Router) -> None:
    fakes[0].script(raw(200, b"[1]", length=1 << 40))
    with pytest.raises(CascadeExhausted) as info:
        complete(router, OPENAI_ONLY, request())
    [attempt] = info.value.record["attempts"]
    assert attempt["outcome"] == "error"
    assert "body over 33554432 bytes" in attempt["detail"]


def test_an_error_answer_whose_body_breaks_off_is_still_classified_by_its_status(
        fakes: tuple[FakeProvider, FakeProvider], router: Router) -> None:
    cut = raw(429, b'{"error": "slow down', length=10_000, headers={"Retry-After": "1"})
    fakes[0].script(cut, cut)
    with pytest.raises(CascadeExhausted) as info:
        complete(router, OPENAI_ONLY, request())
    assert outcomes(info.value.record) == [("openai/cheap", 0, "rate_limit", 429)]
    assert info.value.record["error"]["provider_error"] == '{"error": "slow down'
    with pytest.raises(CascadeExhausted) as streamed:
        stream(router, OPENAI_ONLY, request())
    assert outcomes(streamed.value.record) == [("openai/cheap", 0, "rate_limit", 429)]


# -- finding 5: deeply nested error bodies ----------------------------------------------------


def nested(depth: int, leaf: Any) -> dict[str, Any]:
    value: Any = leaf
    for _ in range(depth):
        value = {"e": value}
    return {"error": value}


def test_deeply_nested_error_body_is_recorded_not_a_traceback(
        fakes: tuple[FakeProvider, FakeProvider], router: Router) -> None:
    body = json.dumps(nested(600, f"bad key {OPENAI_KEY}"), separators=(",", ":")).encode()
    assert body.count(b"{") == 601 and len(body) < 4096  # 600 levels, 3.6 KB
    fakes[0].script(raw(500, body), raw(400, body), raw(500, body))
    with pytest.raises(CascadeExhausted) as info:
        complete(router, OPENAI_ONLY, request())
    record = info.value.record
    assert outcomes(record) == [("openai/cheap", 0, "error", 500)]
    kept = record["error"]["provider_error"]
    assert isinstance(kept, str)  # too deep to keep as JSON: its text, scrubbed
    assert OPENAI_KEY not in kept and "bad key ***" in kept
    json.dumps(record)  # the record stays serialisable
    with pytest.raises(ProviderRejected) as rejected:
        complete(router, OPENAI_ONLY, request())
    assert outcomes(rejected.value.record) == [("openai/cheap", 0, "bad_request", 400)]
    assert OPENAI_KEY not in json.dumps(rejected.value.to_json())
    with pytest.raises(CascadeExhausted) as streamed:
        stream(router, OPENAI_ONLY, request())
    assert outcomes(streamed.value.record) == [("openai/cheap", 0, "error", 500)]


def test_a_shallow_error_body_stays_json_and_is_scrubbed_at_every_level(
        fakes: tuple[FakeProvider, FakeProvider], router: Router) -> None:
    fakes[0].script(raw(500, json.dumps(nested(20, [OPENAI_KEY, {OPENAI_KEY: 1}])).encode()))
    with pytest.raises(CascadeExhausted) as info:
        complete(router, OPENAI_ONLY, request())
    kept = info.value.record["error"]["provider_error"]
    assert kept == nested(20, ["***", {"***": 1}])


def test_scrubbing_a_body_nested_thousands_deep_needs_no_recursion() -> None:
    body: Any = [OPENAI_KEY]
    for _ in range(5000):
        body = {OPENAI_KEY: body, "n": [1, None, True]}
    clean = scrubbed(UpstreamFailure("error", f"echo {OPENAI_KEY}", body=body), OPENAI_KEY)
    assert clean.message == "echo ***"
    depth = 0
    value = clean.body
    while isinstance(value, dict):
        assert set(value) == {"***", "n"} and value["n"] == [1, None, True]
        value, depth = value["***"], depth + 1
    assert depth == 5000 and value == ["***"]


# -- finding 7: a key goes only where the environment sends it --------------------------------


def two_openai_offerings(evil_url: str, **evil: Any) -> list[dict[str, Any]]:
    return [offering("openai/cheap", "openai", "cheap", 1.0, 2.0),
            offering("openai/evil", "openai", "evil", 0.0, 0.0, base_url=evil_url, **evil)]


def sent_keys(fp: FakeProvider) -> list[str | None]:
    return [r.headers.get("authorization") or r.headers.get("x-api-key") for r in fp.requests]


def test_a_catalog_base_url_does_not_receive_the_providers_key(
        fakes: tuple[FakeProvider, FakeProvider], attacker: FakeProvider) -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fakes[0].base_url + "/v1"}
    router = router_over(two_openai_offerings(attacker.base_url + "/v1"), env)
    done = complete(router, policy(cascade=1), request())
    record = done.record()
    assert record["served_by"] == "openai/cheap"  # the free offering did not win
    assert attacker.requests == []
    assert sent_keys(fakes[0]) == [f"Bearer {OPENAI_KEY}"]
    assert record["live"]["values"]["openai/evil"]["status"] == "no_key"
    reason = record["live"]["values"]["openai/evil"]["reason"]
    assert "OPENAI_API_KEY is only sent to OPENAI_BASE_URL" in reason and "api_key_env" in reason
    router.close()


def test_an_overlay_offering_does_not_receive_the_providers_key(
        tmp_path: Path, attacker: FakeProvider) -> None:
    overlay = tmp_path / "evil.toml"
    overlay.write_text(f'''schema = 1
[[offerings]]
id = "openai/evil"
model = "evil"
provider = "openai"
region = "global"
input_price = 0
output_price = 0
base_url = "{attacker.base_url}/v1"
''')
    env = {"OPENAI_API_KEY": OPENAI_KEY}  # the default endpoint, never called here
    router = router_over([offering("openai/cheap", "openai", "cheap", 1.0, 2.0)], env,
                         overlays=(overlay,))
    assert router.live().of("openai/evil").status == "no_key"
    assert "https://api.openai.com/v1" in (router.live().of("openai/evil").reason or "")
    with pytest.raises(NoAdmissibleOffering):
        complete(router, policy(cascade=0, filters=[["==", "id", "openai/evil"]]), request())
    assert attacker.requests == []
    router.close()


def test_a_keyless_runtime_at_a_catalog_url_is_called_without_any_key(
        attacker: FakeProvider) -> None:
    env = {"VLLM_API_KEY": "sk-vllm-secret", "OPENAI_API_KEY": OPENAI_KEY}
    router = router_over([offering("vllm/evil", "vllm", "evil", 0.0, 0.0,
                                   base_url=attacker.base_url + "/v1")], env)
    done = complete(router, policy(cascade=0), request())
    assert done.record()["served_by"] == "vllm/evil"
    assert sent_keys(attacker) == [None]  # neither VLLM_API_KEY nor any other key
    router.close()


def test_api_key_env_naming_another_providers_key_does_not_redirect_it(
        attacker: FakeProvider) -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    router = router_over([
        offering("vllm/a", "vllm", "a", 0.0, 0.0, base_url=attacker.base_url + "/v1",
                 api_key_env="OPENAI_API_KEY"),
        offering("openai/b", "openai", "b", 0.0, 0.0, base_url=attacker.base_url + "/v1",
                 api_key_env="ANTHROPIC_API_KEY"),
        offering("openai/c", "openai", "c", 0.0, 0.0, api_key_env="STRIPE_API_KEY"),
    ], {**env, "STRIPE_API_KEY": "sk-stripe"})
    live = router.live()
    assert {o: live.of(o).status for o in ("vllm/a", "openai/b", "openai/c")} == {
        "vllm/a": "no_key", "openai/b": "no_key", "openai/c": "no_key"}
    assert "`OPENAI_API_KEY` is only sent to `https://api.openai.com/v1`" in (
        live.of("vllm/a").reason or "")
    assert "set STRIPE_BASE_URL" in (live.of("openai/c").reason or "")
    with pytest.raises(NoAdmissibleOffering):
        complete(router, policy(), request())
    assert attacker.requests == []
    router.close()


def test_api_key_env_sends_the_deployments_own_key_to_the_url_the_environment_pairs_it_with(
        fakes: tuple[FakeProvider, FakeProvider], attacker: FakeProvider) -> None:
    own = attacker  # here: the operator's own deployment
    env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fakes[0].base_url + "/v1",
           "ACME_API_KEY": "sk-acme", "ACME_BASE_URL": own.base_url + "/v1"}
    router = router_over([
        offering("openai/acme", "openai", "acme", 0.0, 0.0, base_url=own.base_url + "/v1/",
                 api_key_env="ACME_API_KEY"),
        offering("openai/acme-env", "openai", "acme-env", 0.1, 0.1, api_key_env="ACME_API_KEY"),
        offering("openai/elsewhere", "openai", "elsewhere", 0.0, 0.0,
                 base_url=fakes[0].base_url + "/other", api_key_env="ACME_API_KEY"),
    ], env)
    assert router.live().of("openai/elsewhere").status == "no_key"
    assert "`ACME_API_KEY` is only sent to ACME_BASE_URL" in (
        router.live().of("openai/elsewhere").reason or "")
    assert complete(router, policy(cascade=0), request()).served_by == "openai/acme"
    pol = policy(cascade=0, filters=[["==", "id", "openai/acme-env"]])
    assert complete(router, pol, request()).served_by == "openai/acme-env"
    assert sent_keys(own) == ["Bearer sk-acme", "Bearer sk-acme"]
    assert fakes[0].requests == []
    router.close()


def test_an_offering_at_its_providers_own_endpoint_keeps_the_key(
        fakes: tuple[FakeProvider, FakeProvider]) -> None:
    env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fakes[0].base_url + "/v1"}
    same = f"HTTP://127.0.0.1:{fakes[0].port}/v1/"  # another spelling of the same URL
    router = router_over([offering("openai/cheap", "openai", "cheap-2026", 0.0, 0.0,
                                   base_url=same)], env)
    assert complete(router, policy(cascade=0), request()).served_by == "openai/cheap"
    assert sent_keys(fakes[0]) == [f"Bearer {OPENAI_KEY}"]
    router.close()


@pytest.mark.parametrize("name", ["openai_api_key", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY",
                                  "_API_KEY", "A B_API_KEY", "X" * 130 + "_API_KEY"])
def test_api_key_env_must_be_an_upper_case_api_key_variable(name: str) -> None:
    with pytest.raises(CatalogError) as info:
        build_catalog({"schema": 1, "offerings": [
            offering("openai/x", "openai", "x", 1.0, 1.0, api_key_env=name)]})
    [problem] = info.value.problems
    assert problem.code == "catalog.invalid_entry"
    assert problem.pointer == "/offerings/0/api_key_env"


# -- finding 13: upper-case schemes -----------------------------------------------------------


def test_an_upper_case_scheme_is_normalised_in_catalogs_and_environment(
        fakes: tuple[FakeProvider, FakeProvider]) -> None:
    url = f"HTTP://127.0.0.1:{fakes[0].port}/v1"
    router = router_over([offering("vllm/mine", "vllm", "mine", 0.0, 0.0, base_url=url)], {})
    assert router.catalog.get("vllm/mine").base_url == url.replace("HTTP", "http")  # type: ignore[union-attr]
    assert router.live().of("vllm/mine").status == "available"
    fakes[0].api_key = None
    try:
        assert complete(router, policy(cascade=0), request()).served_by == "vllm/mine"
        router.close()
        router = router_over([offering("vllm/env", "vllm", "env", 0.0, 0.0)],
                             {"VLLM_BASE_URL": url})
        assert router.live().of("vllm/env").status == "available"
        assert complete(router, policy(cascade=0), request()).served_by == "vllm/env"
    finally:
        fakes[0].api_key = OPENAI_KEY
        router.close()
    assert [r.path for r in fakes[0].requests] == ["/v1/chat/completions"] * 2


def test_a_base_url_the_catalog_refuses_is_refused_from_the_environment_too() -> None:
    with pytest.raises(CatalogError) as info:
        build_catalog({"schema": 1, "offerings": [
            offering("vllm/x", "vllm", "x", 0.0, 0.0, base_url="ftp://127.0.0.1/v1")]})
    assert info.value.problems[0].pointer == "/offerings/0/base_url"
    router = router_over([offering("vllm/x", "vllm", "x", 0.0, 0.0)],
                         {"VLLM_BASE_URL": "ftp://user:s3cret@127.0.0.1/v1"})
    live = router.live().of("vllm/x")
    assert live.status == "unsupported"
    assert "VLLM_BASE_URL" in (live.reason or "") and "http" in (live.reason or "")
    assert "s3cret" not in (live.reason or "")  # a URL from the environment is never quoted
    router.close()


# -- finding 14: image parts count toward the request's size ----------------------------------


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def with_parts(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": "what?"},
                                                      *parts]}]}


def test_an_image_over_the_limit_is_refused_at_its_pointer(
        fakes: tuple[FakeProvider, FakeProvider], router: Router) -> None:
    huge = "data:image/png;base64," + "A" * (MAX_REQUEST_BYTES + 1)
    with pytest.raises(RequestError) as info:
        complete(router, policy(), with_parts(image(huge)))
    [problem] = info.value.problems
    assert problem.code == "request.image_too_large"
    assert problem.pointer == "/messages/0/content/1/image_url/url"
    assert problem.hint and "smaller" in problem.hint
    assert fakes[0].requests == []  # refused before any call
    bare = {"type": "input_image", "image_url": huge}
    with pytest.raises(RequestError) as bare_info:
        parse_request(with_parts(bare))
    assert [p.pointer for p in bare_info.value.problems] == ["/messages/0/content/1/image_url"]


def test_images_count_toward_the_request_content_size() -> None:
    half = "data:image/png;base64," + "A" * (MAX_REQUEST_BYTES // 2)
    with pytest.raises(RequestError) as info:
        parse_request(with_parts(image(half), image(half)))
    [problem] = info.value.problems
    assert problem.code == "request.too_large" and problem.pointer == ""
    assert "in images" in problem.message and problem.hint
    small = parse_request(with_parts(image(half)))  # one is within the limit
    # the size counts toward the limit, not the token estimate (1,000 tokens an image)
    assert small.features.input_tokens < 1100


# -- finding 17: Anthropic cache counts that were not reported are unknown, not zero ----------

ANTHROPIC_MESSAGE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x-20260101",
    "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
    "usage": {"input_tokens": 100, "output_tokens": 20}}


def anthropic_sse() -> bytes:
    events = [
        ("message_start", {"type": "message_start", "message": {
            **ANTHROPIC_MESSAGE, "content": [], "stop_reason": None,
            "usage": {"input_tokens": 100, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "hi"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                    for name, data in events)


def test_anthropic_usage_without_cache_fields_reports_no_cached_tokens(
        fakes: tuple[FakeProvider, FakeProvider], router: Router) -> None:
    fakes[1].script(raw(200, json.dumps(ANTHROPIC_MESSAGE).encode()),
                    raw(200, anthropic_sse(), content_type="text/event-stream"))
    done = complete(router, ANTHROPIC_ONLY, request())
    assert "prompt_tokens_details" not in done.response["usage"]
    expected = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    for record in (done.record(), stream(router, ANTHROPIC_ONLY, request())[1].record()):
        assert record["usage"] == expected  # no `cached_tokens`: not reported
        assert record["cost_usd"] == pytest.approx((100 * 2.0 + 20 * 8.0) / 1e6)
        assert {f["attribute"] for f in record["cost"]["facts"]} == {"input_price",
                                                                     "output_price"}


def test_anthropic_usage_with_cache_fields_reports_them(
        fakes: tuple[FakeProvider, FakeProvider], router: Router) -> None:
    fakes[1].script_for("claude-x-20260101", ok("hi", usage=(100, 20), cached=0))
    record = complete(router, ANTHROPIC_ONLY, request()).record()
    assert record["usage"]["cached_tokens"] == 0  # reported as 0: a known zero
