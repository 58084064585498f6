"""The clouds through the router, end to end over loopback: Bedrock Converse signed with SigV4
(the fake recomputes the signature), Azure OpenAI and AI Foundry (deployment path, api-version,
api-key), Vertex AI with google-auth's real service-account flow against a loopback token
endpoint. The README's example completes with failover from a Bedrock EU hop to an Azure EU
hop, and no secret, token or signature reaches a record or an error."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from router.catalog.offerings import Catalog, build_catalog
from router.config import RouterConfig
from router.dispatch.completion import Completion, ProviderRejected
from router.facade import Router
from tests.dispatch_support import Clock
from tests.fakes import (
    AwsCredentialsForFake,
    FakeProvider,
    content_filter,
    ok,
    raw,
    status,
    stream_error,
    tool_call,
)

ROOT = Path(__file__).resolve().parents[1]
KEY_ID, SECRET, TOKEN = "AKIDCLOUDTEST0001", "cloud/secret+key0001", "session-token-xyz"
AZURE_KEY = "azure-eu-key-0123456789"
VERTEX_TOKEN = "ya29.loopback-token-0001"
NOVA = "eu.amazon.nova-lite-v1:0"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def offering(oid: str, provider: str, region: str, price: float, **extra: Any
             ) -> dict[str, Any]:
    return {"id": oid, "model": oid.rsplit("/", 1)[-1], "provider": provider, "region": region,
            "context_window": 300_000, "max_output_tokens": 8000, "input_price": price,
            "output_price": price * 4, "capabilities": ["streaming", "tools"], **extra}


def catalog() -> Catalog:
    return build_catalog({"schema": 1, "source": "cloud tests", "offerings": [
        offering("bedrock/eu/nova-lite-v1", "bedrock", "eu", 0.06, api_model=NOVA),
        offering("azure/eu/gpt-5-nano", "azure", "eu", 0.1),
        offering("azure_ai/phi-4", "azure_ai", "global", 0.2, api_model="Phi-4"),
        offering("azure_ai/claude-haiku-4-5", "azure_ai", "global", 0.3),
        offering("vertex_ai/gemini-2.5-flash", "vertex_ai", "eu", 0.4),
        offering("vertex_ai/claude-haiku-4-5", "vertex_ai", "eu", 0.5,
                 api_model="claude-haiku-4-5@20251001"),
        offering("replicate/llama", "replicate", "global", 0.01),
    ]})


def policy(*filters: Any, cascade: int = 2) -> list[Any]:
    return ["policy", ["ev_zero"], ["filter", *filters], ["rank", ["asc", "input_price"]],
            ["select", ["first"], ["cascade", cascade]], ["mutate"], ["fallback"]]


def only(*providers: str) -> list[Any]:
    return ["in", "provider", list(providers)]


REQUEST = {"model": "router", "max_tokens": 100,
           "messages": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "hello there"}]}


@pytest.fixture
def bedrock() -> Iterator[FakeProvider]:
    aws = AwsCredentialsForFake(KEY_ID, SECRET, session_token=TOKEN, region="eu-west-1")
    with FakeProvider(aws=aws) as fake:
        yield fake


@pytest.fixture
def azure() -> Iterator[FakeProvider]:
    with FakeProvider(api_key=AZURE_KEY, vertex_token=VERTEX_TOKEN) as fake:
        yield fake


def cloud_env(bedrock: FakeProvider, azure: FakeProvider, **extra: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_SESSION_TOKEN": TOKEN, "BEDROCK_EU_REGION": "eu-west-1",
            "BEDROCK_EU_BASE_URL": bedrock.base_url,
            "AZURE_EU_BASE_URL": azure.base_url, "AZURE_EU_API_KEY": AZURE_KEY,
            "AZURE_AI_BASE_URL": azure.base_url, "AZURE_AI_API_KEY": AZURE_KEY, **extra}


def make_router(env: dict[str, str], cat: Catalog | None = None) -> Router:
    clock = Clock()
    ids = iter(f"trace-{i}" for i in range(1000))
    return Router(cat or catalog(), config=RouterConfig(
        clock=clock, trace_ids=lambda: next(ids), environ=env, sleep=clock.sleep,
        records=None))


async def complete(router: Router, pol: list[Any], req: dict[str, Any]) -> Any:
    try:
        return await router.complete(pol, req)
    finally:
        await router.aclose()


async def stream(router: Router, pol: list[Any], req: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return [chunk async for chunk in await router.stream(pol, req)]
    finally:
        await router.aclose()


def secrets_absent(text: str) -> None:
    for secret in (SECRET, TOKEN, AZURE_KEY, VERTEX_TOKEN):
        assert secret not in text
    assert "Signature=" not in text and "AWS4-HMAC-SHA256" not in text


# -- Bedrock ----------------------------------------------------------------------------------


def test_bedrock_converse_is_signed_translated_and_priced(bedrock: FakeProvider,
                                                         azure: FakeProvider) -> None:
    bedrock.script_for(NOVA, ok("bonjour", usage=(40, 10), cached=8))
    router = make_router(cloud_env(bedrock, azure))
    done = run(complete(router, policy(only("bedrock")), REQUEST))
    assert isinstance(done, Completion)
    assert done.response["choices"][0]["message"]["content"] == "bonjour"
    assert done.response["object"] == "chat.completion"
    sent = bedrock.requests[0]
    assert sent.path == "/model/eu.amazon.nova-lite-v1%3A0/converse"
    assert sent.json["system"] == [{"text": "Be brief."}]
    assert sent.json["messages"] == [{"role": "user", "content": [{"text": "hello there"}]}]
    assert sent.json["inferenceConfig"]["maxTokens"] == 100
    assert "model" not in sent.json
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert "/eu-west-1/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.headers["x-amz-security-token"] == TOKEN
    rec = done.record()
    assert rec["served_by"] == "bedrock/eu/nova-lite-v1"
    assert rec["usage"]["prompt_tokens"] == 48 and rec["usage"]["cached_tokens"] == 8
    assert rec["cost_usd"] is not None
    secrets_absent(json.dumps(rec))


def test_bedrock_stream_with_a_tool_call(bedrock: FakeProvider, azure: FakeProvider) -> None:
    bedrock.script_for(NOVA, ok("", tool_calls=[tool_call("lookup", {"ticket": 4411})],
                                usage=(30, 5)))
    router = make_router(cloud_env(bedrock, azure))
    req = {**REQUEST, "stream": True, "stream_options": {"include_usage": True},
           "tools": [{"type": "function", "function": {
        "name": "lookup", "parameters": {"type": "object"}}}]}
    chunks = run(stream(router, policy(only("bedrock")), req))
    assert bedrock.requests[0].path.endswith("/converse-stream")
    assert bedrock.requests[0].json["toolConfig"]["tools"][0]["toolSpec"]["name"] == "lookup"
    calls = [tc for c in chunks for ch in c["choices"]
             for tc in ch.get("delta", {}).get("tool_calls") or []]
    assert calls[0]["function"]["name"] == "lookup"
    arguments = "".join(tc["function"].get("arguments") or "" for tc in calls)
    assert json.loads(arguments) == {"ticket": 4411}
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"]
                if ch.get("finish_reason")]
    assert finishes == ["tool_calls"]
    assert chunks[-1]["usage"]["prompt_tokens"] == 30


def test_a_wrong_secret_is_refused_by_the_signature_check_and_never_leaks(
        bedrock: FakeProvider, azure: FakeProvider) -> None:
    env = cloud_env(bedrock, azure, AWS_SECRET_ACCESS_KEY="not/the+secret0001")
    router = make_router(env)
    with pytest.raises(ProviderRejected) as info:
        run(complete(router, policy(only("bedrock")), REQUEST))
    assert info.value.status == 403
    text = json.dumps(info.value.record) + str(info.value)
    assert "InvalidSignatureException" in text or "signature" in text.lower()
    assert "not/the+secret0001" not in text
    secrets_absent(text)


# -- The README's example: Bedrock EU fails, Azure EU serves ------------------------------------


def readme_policy() -> Any:
    return json.loads((ROOT / "examples" / "support-tickets.policy.json").read_text())


def readme_request() -> Any:
    return json.loads((ROOT / "examples" / "support-ticket.request.json").read_text())


def test_the_readme_example_fails_over_from_bedrock_eu_to_azure_eu(
        bedrock: FakeProvider, azure: FakeProvider) -> None:
    bedrock.script(status(503), status(503), status(503))
    azure.script(ok("We will correct the VAT rate.", usage=(60, 9)))
    router = Router(config=RouterConfig(environ=cloud_env(bedrock, azure), records=None,
                                        sleep=Clock().sleep))
    done = run(complete(router, readme_policy(), readme_request()))
    rec = done.record()
    assert rec["selected"] == "bedrock/eu/nova-lite-v1"
    assert rec["served_by"] == "azure/eu/gpt-5-nano"
    assert rec["attempts"][0]["offering"] == "bedrock/eu/nova-lite-v1"
    assert rec["attempts"][0]["status"] == 503
    assert rec["attempts"][-1]["outcome"] == "ok"
    assert bedrock.requests[0].path == "/model/eu.amazon.nova-lite-v1%3A0/converse"
    sent = azure.requests[0]
    assert sent.path == "/openai/deployments/gpt-5-nano/chat/completions"
    assert sent.target.endswith("?api-version=2025-04-01-preview")
    assert sent.headers["api-key"] == AZURE_KEY and "authorization" not in sent.headers
    assert done.response["choices"][0]["message"]["content"] == "We will correct the VAT rate."
    secrets_absent(json.dumps(rec))


def test_a_throttled_bedrock_stream_fails_over_to_azure(bedrock: FakeProvider,
                                                       azure: FakeProvider) -> None:
    bedrock.script_for(NOVA, status(429, headers={"Retry-After": "0"}),
                       status(429, headers={"Retry-After": "0"}),
                       status(429, headers={"Retry-After": "0"}))
    azure.script(ok("from azure"))
    router = make_router(cloud_env(bedrock, azure))
    chunks = run(stream(router, policy(only("bedrock", "azure")), {**REQUEST, "stream": True}))
    text = "".join(ch["delta"].get("content") or "" for c in chunks for ch in c["choices"])
    assert text == "from azure"
    assert bedrock.requests[0].path.endswith("/converse-stream")


def test_an_exception_frame_mid_stream_ends_the_stream_with_its_kind(
        bedrock: FakeProvider, azure: FakeProvider) -> None:
    bedrock.script_for(NOVA, stream_error(after_chunks=1, code=429))
    router = make_router(cloud_env(bedrock, azure))
    chunks = run(stream(router, policy(only("bedrock")), {**REQUEST, "stream": True}))
    assert chunks[-1]["error"]["code"] == "rate_limit"
    assert "bedrock/eu/nova-lite-v1" in chunks[-1]["error"]["message"]
    secrets_absent(json.dumps(chunks))


# -- Azure ------------------------------------------------------------------------------------


def test_azure_content_filter_is_a_bad_request_that_names_the_category(
        bedrock: FakeProvider, azure: FakeProvider) -> None:
    azure.script(content_filter("violence", "medium"))
    router = make_router(cloud_env(bedrock, azure))
    with pytest.raises(ProviderRejected) as info:
        run(complete(router, policy(only("azure", "azure_ai")), REQUEST))
    assert info.value.status == 400
    attempt = info.value.record["attempts"][0]
    assert attempt["outcome"] == "bad_request"
    assert "content filter: violence (medium)" in attempt["detail"]
    assert len(azure.requests) == 1  # not failed over: another deployment would filter too
    secrets_absent(json.dumps(info.value.record))


def test_azure_ai_models_and_claude_on_foundry(bedrock: FakeProvider,
                                               azure: FakeProvider) -> None:
    azure.script(ok("phi says hi"), ok("claude says hi"))
    env = cloud_env(bedrock, azure)
    done = run(complete(make_router(env), policy(["==", "model", "phi-4"]), REQUEST))
    assert done.response["choices"][0]["message"]["content"] == "phi says hi"
    sent = azure.requests[0]
    assert sent.path == "/models/chat/completions" and sent.json["model"] == "Phi-4"
    assert "api-version=2024-05-01-preview" in sent.target
    done = run(complete(make_router(env), policy(["==", "id", "azure_ai/claude-haiku-4-5"]),
                        REQUEST))
    assert done.response["choices"][0]["message"]["content"] == "claude says hi"
    assert azure.requests[1].path == "/anthropic/v1/messages"


def test_an_eu_azure_offering_never_falls_back_to_the_global_resource(
        bedrock: FakeProvider, azure: FakeProvider) -> None:
    env = {"AZURE_BASE_URL": azure.base_url, "AZURE_API_KEY": AZURE_KEY}
    router = make_router(env)
    ep = router.endpoint(router.catalog.get("azure/eu/gpt-5-nano"))  # type: ignore[arg-type]
    assert ep.status == "no_key"  # type: ignore[union-attr]
    assert "AZURE_EU_BASE_URL" in ep.reason  # type: ignore[union-attr]


# -- Vertex AI, with google-auth's service-account flow -----------------------------------------


class TokenEndpoint:
    """Google's OAuth token endpoint on loopback: checks the JWT-bearer grant's signature with
    the service account's public key and answers an access token."""

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self.public_key = public_key
        self.grants = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                ok_grant = endpoint.check(form)
                body = (json.dumps({"access_token": VERTEX_TOKEN, "expires_in": 3600,
                                    "token_type": "Bearer"}) if ok_grant
                        else json.dumps({"error": "invalid_grant"}))
                self.send_response(200 if ok_grant else 400)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def check(self, form: dict[str, list[str]]) -> bool:
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return False
        header, payload, signature = form["assertion"][0].split(".")
        pad = "=" * (-len(signature) % 4)
        try:
            self.public_key.verify(base64.urlsafe_b64decode(signature + pad),
                                   f"{header}.{payload}".encode(), padding.PKCS1v15(),
                                   hashes.SHA256())
        except Exception:
            return False
        self.grants += 1
        return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service_account(tmp_path: Path) -> Iterator[tuple[Path, TokenEndpoint]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    endpoint = TokenEndpoint(key.public_key())
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "proj-eu", "private_key_id": "k1",
        "private_key": pem, "client_email": "router@proj-eu.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": endpoint.url}))
    yield path, endpoint
    endpoint.close()


def test_vertex_gemini_and_claude_with_a_service_account(
        bedrock: FakeProvider, azure: FakeProvider,
        service_account: tuple[Path, TokenEndpoint]) -> None:
    path, tokens = service_account
    azure.script(ok("gemini here"), ok("claude here"))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "VERTEX_BASE_URL": azure.base_url}
    done = run(complete(make_router(env), policy(only("vertex_ai")), REQUEST))
    assert done.response["choices"][0]["message"]["content"] == "gemini here"
    sent = azure.requests[0]
    assert sent.path == ("/v1/projects/proj-eu/locations/europe-west4/endpoints/openapi/"
                         "chat/completions")
    assert sent.json["model"] == "google/gemini-2.5-flash"
    assert sent.headers["authorization"] == f"Bearer {VERTEX_TOKEN}"
    done = run(complete(make_router(env), policy(["==", "id", "vertex_ai/claude-haiku-4-5"]),
                        REQUEST))
    assert done.response["choices"][0]["message"]["content"] == "claude here"
    sent = azure.requests[1]
    assert sent.path == ("/v1/projects/proj-eu/locations/europe-west4/publishers/anthropic/"
                         "models/claude-haiku-4-5@20251001:rawPredict")
    assert sent.json["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent.json
    assert tokens.grants >= 1
    secrets_absent(json.dumps(done.record()))


def test_vertex_without_credentials_is_no_key_with_a_hint(tmp_path: Path) -> None:
    router = make_router({"VERTEX_PROJECT": "p"})
    ep = router.endpoint(router.catalog.get("vertex_ai/gemini-2.5-flash"))  # type: ignore[arg-type]
    assert ep.status == "no_key"  # type: ignore[union-attr]
    assert "GOOGLE_APPLICATION_CREDENTIALS" in ep.reason  # type: ignore[union-attr]


# -- Static callability ---------------------------------------------------------------------


def test_a_dry_run_rejects_an_offering_without_an_adapter() -> None:
    router = make_router({})
    rec = router.route(policy(only("replicate", "bedrock")), REQUEST).record()
    assert rec["selected"] == "bedrock/eu/nova-lite-v1"
    reasons = [e["reason"] for e in rec["rejected"]["replicate/llama"]]
    assert any("no adapter for provider `replicate`" in r for r in reasons)
    assert rec["rejected"]["replicate/llama"][0]["pointer"] == "builtin:status_available"


def test_without_its_extra_a_cloud_is_unsupported_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from router.dispatch.providers import clouds, registry
    monkeypatch.setattr(registry, "installed", lambda extra: extra != "aws")
    monkeypatch.setattr(clouds, "installed", lambda extra: extra != "aws")
    router = make_router({})
    rec = router.route(policy(only("bedrock", "azure")), REQUEST).record()
    assert rec["selected"] == "azure/eu/gpt-5-nano"
    reason = rec["rejected"]["bedrock/eu/nova-lite-v1"][0]["reason"]
    assert "pip install 'unhardcoded[aws]'" in reason


def test_route_and_complete_agree_on_what_can_be_called() -> None:
    """Whatever `route` names without `--live` has an adapter `complete` can use."""
    router = Router(config=RouterConfig(records=None))
    from router.dispatch.providers.registry import ADAPTERS, static_unreachable
    for o in router.catalog:
        if static_unreachable(o.provider) is None:
            ep = router.endpoint(o)
            assert getattr(ep, "wire", None) in ADAPTERS or ep.status in ("no_key",)  # type: ignore[union-attr]
    router.close()


def test_dispatch_time_is_injected_not_read(bedrock: FakeProvider, azure: FakeProvider) -> None:
    bedrock.script_for(NOVA, ok("x"))
    router = make_router(cloud_env(bedrock, azure))
    done = run(complete(router, policy(only("bedrock")), REQUEST))
    assert done.response["created"] == int(dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
                                           .timestamp())


# -- Bearer tokens: cached, refreshed before expiry, failures without their message ------------


def test_bearer_tokens_are_cached_until_shortly_before_they_expire() -> None:
    from router.dispatch.failures import UpstreamFailure
    from router.dispatch.providers.auth import TOKEN_REFRESH_MARGIN_S, BearerTokens
    now = [1000.0]
    issued: list[str] = []

    def fetch() -> tuple[str, float | None]:
        issued.append(f"tok-{len(issued)}")
        return issued[-1], now[0] + 3600

    tokens = BearerTokens("vertex_ai", "Google access token", fetch, clock=lambda: now[0])

    async def header() -> str:
        return (await tokens.headers("POST", "https://x", {}, b""))["authorization"]

    assert run(header()) == "Bearer tok-0"
    now[0] += 3600 - TOKEN_REFRESH_MARGIN_S - 1
    assert run(header()) == "Bearer tok-0"
    now[0] += 2
    assert run(header()) == "Bearer tok-1"

    def broken() -> tuple[str, float | None]:
        raise PermissionError("refresh token rt-SECRET-123 was revoked")

    failing = BearerTokens("vertex_ai", "Google access token", broken)
    with pytest.raises(UpstreamFailure) as info:
        run(failing.token())
    assert "PermissionError" in str(info.value) and "rt-SECRET-123" not in str(info.value)
    assert info.value.kind == "error"  # the next hop is tried


def _frames(*events: tuple[str, dict[str, Any]]) -> bytes:
    from tests.fakes import encode_event_message
    return b"".join(encode_event_message(
        [(":event-type", name), (":content-type", "application/json"),
         (":message-type", "event")], json.dumps(payload).encode()) for name, payload in events)


def test_a_bedrock_stream_without_metadata_still_finishes(bedrock: FakeProvider,
                                                          azure: FakeProvider) -> None:
    body = _frames(("messageStart", {"role": "assistant"}),
                   ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "done"}}),
                   ("contentBlockStop", {"contentBlockIndex": 0}),
                   ("messageStop", {"stopReason": "end_turn"}))
    bedrock.script_for(NOVA, raw(200, body, content_type="application/vnd.amazon.eventstream"))
    chunks = run(stream(make_router(cloud_env(bedrock, azure)), policy(only("bedrock")),
                        {**REQUEST, "stream": True}))
    assert "".join(ch["delta"].get("content") or "" for c in chunks
                   for ch in c["choices"]) == "done"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_bedrock_stream_cut_before_message_stop_is_an_error(bedrock: FakeProvider,
                                                              azure: FakeProvider) -> None:
    body = _frames(("messageStart", {"role": "assistant"}),
                   ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hal"}}))
    bedrock.script_for(NOVA, raw(200, body, content_type="application/vnd.amazon.eventstream"))
    chunks = run(stream(make_router(cloud_env(bedrock, azure)), policy(only("bedrock")),
                        {**REQUEST, "stream": True}))
    assert chunks[-1]["error"]["code"] == "error"


def test_a_corrupt_event_stream_frame_is_malformed(bedrock: FakeProvider,
                                                   azure: FakeProvider) -> None:
    good = _frames(("messageStart", {"role": "assistant"}))
    corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])  # the message checksum no longer matches
    bedrock.script_for(NOVA, raw(200, corrupt, content_type="application/vnd.amazon.eventstream"))
    azure.script(ok("azure after a corrupt frame"))
    chunks = run(stream(make_router(cloud_env(bedrock, azure)),
                        policy(only("bedrock", "azure")), {**REQUEST, "stream": True}))
    text = "".join(ch["delta"].get("content") or "" for c in chunks for ch in c["choices"])
    assert text == "azure after a corrupt frame"


def test_a_broken_aws_profile_is_no_key_not_a_crash(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment goes through botocore's chain; an unknown profile there must
    read as "no credentials", never as an exception out of the router."""
    import os

    from router.dispatch.providers import clouds
    monkeypatch.setattr(clouds, "_CHAIN", [])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with pytest.raises(clouds.CloudUnreachable) as info:
        clouds.resolve_cloud("bedrock", "eu", NOVA, os.environ, None)
    assert info.value.status == "no_key" and "no AWS credentials" in info.value.reason


def test_bedrock_mantle_with_a_bedrock_api_key() -> None:
    """Bedrock Mantle: the OpenAI-compatible surface for open models, the Anthropic Messages
    surface for Claude, the Bedrock API key as the bearer token on both."""
    key = "bedrock-api-key-0123456789"
    with FakeProvider(api_key=key, azure_entra_token=key) as fake:
        fake.script(ok("gpt-oss here"), ok("claude here"))
        cat = build_catalog({"schema": 1, "source": "mantle", "offerings": [
            offering("bedrock_mantle/gpt-oss-120b", "bedrock_mantle", "global", 0.1,
                     api_model="openai.gpt-oss-120b"),
            offering("bedrock_mantle/claude-haiku-4-5", "bedrock_mantle", "global", 0.2,
                     api_model="anthropic.claude-haiku-4-5")]})
        env = {"BEDROCK_MANTLE_API_KEY": key, "BEDROCK_MANTLE_BASE_URL": fake.base_url}
        done = run(complete(make_router(env, cat), policy(), REQUEST))
        assert done.response["choices"][0]["message"]["content"] == "gpt-oss here"
        sent = fake.requests[0]
        assert sent.path == "/v1/chat/completions" and sent.json["model"] == "openai.gpt-oss-120b"
        assert sent.headers["authorization"] == f"Bearer {key}"
        done = run(complete(make_router(env, cat),
                            policy(["==", "id", "bedrock_mantle/claude-haiku-4-5"]), REQUEST))
        assert done.response["choices"][0]["message"]["content"] == "claude here"
        sent = fake.requests[1]
        assert sent.path == "/anthropic/v1/messages"
        assert sent.json["model"] == "anthropic.claude-haiku-4-5"
        assert sent.headers["authorization"] == f"Bearer {key}" and "x-api-key" not in sent.headers
        assert key not in json.dumps(done.record())
    router = make_router({}, cat)
    ep = router.endpoint(cat.get("bedrock_mantle/gpt-oss-120b"))  # type: ignore[arg-type]
    assert ep.status == "no_key" and "BEDROCK_MANTLE_API_KEY" in ep.reason  # type: ignore[union-attr]


def test_debug_logging_never_writes_a_signature_or_token(
        bedrock: FakeProvider, azure: FakeProvider, caplog: pytest.LogCaptureFixture) -> None:
    """botocore's signer logs the canonical request (with the session token) and the signature
    at DEBUG; the router drops those records."""
    import logging
    bedrock.script_for(NOVA, ok("x"))
    with caplog.at_level(logging.DEBUG):
        run(complete(make_router(cloud_env(bedrock, azure)), policy(only("bedrock")), REQUEST))
    signature = bedrock.requests[0].headers["authorization"].rsplit("Signature=", 1)[1]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records  # debug logging was on (httpx, asyncio, …)
    assert signature not in text and TOKEN not in text and SECRET not in text


def test_debug_logging_never_writes_a_google_token(
        bedrock: FakeProvider, azure: FakeProvider,
        service_account: tuple[Path, TokenEndpoint], caplog: pytest.LogCaptureFixture) -> None:
    import logging
    path, _ = service_account
    azure.script(ok("gemini here"))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "VERTEX_BASE_URL": azure.base_url}
    with caplog.at_level(logging.DEBUG):
        run(complete(make_router(env), policy(only("vertex_ai")), REQUEST))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records and VERTEX_TOKEN not in text
    assert "BEGIN PRIVATE KEY" not in text


@pytest.mark.parametrize("provider", ["bedrock", "azure"])
def test_a_cloud_stream_the_caller_closes_early_is_cancelled_at_once(
        provider: str, bedrock: FakeProvider, azure: FakeProvider) -> None:
    fake = bedrock if provider == "bedrock" else azure
    fake.script(ok("a b c d e f g h", chunks=8, chunk_delay=0.05))
    router = make_router(cloud_env(bedrock, azure))

    async def first_only() -> list[str]:
        try:
            stream = await router.stream(policy(only(provider)), {**REQUEST, "stream": True})
            async for _ in stream:
                break
            await stream.aclose()
            return [a.outcome for a in stream.outcome.attempts]
        finally:
            await router.aclose()
    assert run(first_only()) == ["cancelled"]


def test_an_overlay_gives_an_azure_offering_its_own_resource(bedrock: FakeProvider,
                                                            azure: FakeProvider) -> None:
    """`api_key_env = CONTOSO_API_KEY` → called at `CONTOSO_BASE_URL` with that key, in Azure's
    wire format; a `base_url` elsewhere is refused (the key only goes where it is paired)."""
    azure.script(ok("contoso here"))
    cat = build_catalog({"schema": 1, "source": "overlay", "offerings": [
        offering("azure/eu/contoso-gpt", "azure", "eu", 0.1, api_model="contoso-gpt-prod",
                 api_key_env="CONTOSO_API_KEY")]})
    env = {"CONTOSO_BASE_URL": azure.base_url, "CONTOSO_API_KEY": AZURE_KEY}
    done = run(complete(make_router(env, cat), policy(), REQUEST))
    assert done.response["choices"][0]["message"]["content"] == "contoso here"
    sent = azure.requests[0]
    assert sent.path == "/openai/deployments/contoso-gpt-prod/chat/completions"
    assert sent.headers["api-key"] == AZURE_KEY
    elsewhere = build_catalog({"schema": 1, "source": "overlay", "offerings": [
        offering("azure/eu/contoso-gpt", "azure", "eu", 0.1, api_key_env="CONTOSO_API_KEY",
                 base_url="https://attacker.example/v1")]})
    router = make_router(env, elsewhere)
    ep = router.endpoint(elsewhere.get("azure/eu/contoso-gpt"))  # type: ignore[arg-type]
    assert ep.status == "no_key"  # type: ignore[union-attr]


def test_without_any_aws_setting_the_chain_is_not_consulted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No `AWS_…` variable and no ~/.aws files: Bedrock is `no_key` at once, without asking
    botocore's chain (whose last step waits on the EC2 metadata service)."""
    import os

    from router.dispatch.providers import clouds
    monkeypatch.setattr(clouds, "_CHAIN", [])
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert clouds.aws_credentials(os.environ) is None
    assert clouds._CHAIN == []  # not consulted
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert clouds.aws_configured(os.environ)


def test_without_any_google_setting_adc_is_not_looked_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from router.dispatch.providers import clouds
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "VERTEX_PROJECT",
                 "VERTEXAI_PROJECT", "CLOUDSDK_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(clouds, "GCE_PRODUCT_NAME", tmp_path / "product_name")
    assert not clouds.google_configured(os.environ)
    (tmp_path / "product_name").write_text("Google Compute Engine\n")
    assert clouds.google_configured(os.environ)
    (tmp_path / "product_name").unlink()
    adc = tmp_path / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text("{}")
    assert clouds.google_configured(os.environ)


def test_finished_bedrock_streams_give_their_connection_back(bedrock: FakeProvider,
                                                             azure: FakeProvider) -> None:
    from router.dispatch.pool import DEFAULT_SHARDS
    router = make_router(cloud_env(bedrock, azure))

    async def go() -> None:
        try:
            for _ in range(40):
                stream = await router.stream(policy(only("bedrock")), {**REQUEST, "stream": True})
                async for _ in stream:
                    pass
        finally:
            await router.aclose()
    run(go())
    assert 0 < bedrock.connections_opened <= DEFAULT_SHARDS


def test_a_regional_offering_is_never_sent_to_another_region() -> None:
    """A catalog region with no known cloud region is refused, not sent to a default; the
    general `VERTEX_LOCATION` moves only `global` offerings."""
    from router.dispatch.providers import clouds
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "VERTEX_LOCATION": "us-central1"}
    with pytest.raises(clouds.CloudUnreachable) as info:
        clouds.resolve_cloud("bedrock", "me", NOVA, env, None)
    assert info.value.status == "unsupported" and "BEDROCK_ME_REGION" in info.value.reason
    assert clouds.bedrock_region("me", {**env, "BEDROCK_ME_REGION": "me-central-1"}) == \
        "me-central-1"
    assert clouds.vertex_location("eu", env) == "europe-west4"
    assert clouds.vertex_location("global", env) == "us-central1"
    with pytest.raises(clouds.CloudUnreachable):
        clouds.vertex_location("jp", env)
