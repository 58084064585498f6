"""The fake provider's cloud dialects seen from real clients over loopback: Bedrock Converse
(requests signed by botocore, streams decoded by botocore), Azure OpenAI and AI Foundry, and
Vertex AI (OpenAI-compatible and Claude ``rawPredict``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.config
import botocore.exceptions
import botocore.session
import httpx
import openai
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, EventStreamMessage

from tests.fakes import (
    AwsCredentialsForFake,
    FakeProvider,
    Status,
    content_filter,
    delay,
    encode_event_message,
    malformed,
    ok,
    ok_stream,
    raw,
    reset,
    status,
    stream_drop,
    stream_error,
    tool_call,
    verify_sigv4,
)

KEY_ID, SECRET, REGION = "AKIDFAKEEXAMPLE0001", "fake/secret+key0001", "eu-west-1"
AWS = AwsCredentialsForFake(KEY_ID, SECRET, region=REGION)
NOVA = "eu.amazon.nova-lite-v1:0"
NOVA_PATH = "/model/eu.amazon.nova-lite-v1%3A0"
AZURE_KEY, ENTRA, VERTEX_TOKEN = "azure-key-123", "entra-token-456", "ya29.fake-token"
API_VERSION = "2024-10-21"
DEPLOYMENT = "gpt-4o-prod"
VERTEX_BASE = "/v1/projects/proj-1/locations/europe-west4"
CLAUDE = "claude-sonnet-4@20250514"
MSGS = [{"role": "user", "content": "Say hi"}]
CONVERSE_BODY = {"messages": [{"role": "user", "content": [{"text": "Say hi"}]}]}
CONNECTION_FAILURES = (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider(api_key=AZURE_KEY, aws=AWS, vertex_token=VERTEX_TOKEN,
                      azure_entra_token=ENTRA,
                      azure_deployments=[DEPLOYMENT, "mistral-large"]) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def client(fp: FakeProvider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fp.base_url, trust_env=False, timeout=5.0) as c:
        yield c


# ---- helpers ----------------------------------------------------------------------------------


def signed_headers(url: str, body: bytes, *, key_id: str = KEY_ID, secret: str = SECRET,
                   token: str | None = None, region: str = REGION,
                   headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers of a POST signed by botocore's own SigV4 implementation."""
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials(key_id, secret, token), "bedrock", region).add_auth(request)
    return dict(request.headers.items())


def bedrock(fp: FakeProvider, client: httpx.Client, op: str = "converse",
            body: Mapping[str, Any] | None = None, **sign: Any) -> httpx.Response:
    raw_body = json.dumps(body if body is not None else CONVERSE_BODY).encode()
    path = f"{NOVA_PATH}/{op}"
    return client.post(path, content=raw_body,
                       headers=signed_headers(fp.base_url + path, raw_body, **sign))


def frames(data: bytes) -> list[EventStreamMessage]:
    """Event-stream messages decoded (and CRC-checked) by botocore."""
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def payloads(messages: list[EventStreamMessage]) -> list[tuple[str, Any]]:
    return [(m.headers.get(":event-type") or m.headers[":exception-type"],
             json.loads(m.payload)) for m in messages]


def aws_type(response: httpx.Response) -> str:
    return response.headers["x-amzn-ErrorType"].split(":", 1)[0]


def azure(client: httpx.Client, deployment: str = DEPLOYMENT, *, version: str | None = API_VERSION,
          headers: Mapping[str, str] | None = None, **body: Any) -> httpx.Response:
    query = f"?api-version={version}" if version is not None else ""
    return client.post(f"/openai/deployments/{deployment}/chat/completions{query}",
                       headers=headers if headers is not None else {"api-key": AZURE_KEY},
                       json={"messages": MSGS, **body})


def vertex_claude(client: httpx.Client, op: str = "rawPredict", *,
                  token: str | None = VERTEX_TOKEN, **body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    payload = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 64, "messages": MSGS,
               **body}
    return client.post(f"{VERTEX_BASE}/publishers/anthropic/models/{CLAUDE}:{op}",
                       headers=headers, json=payload)


def vertex_openai(client: httpx.Client, model: str = "google/gemini-2.5-flash",
                  **body: Any) -> httpx.Response:
    return client.post(f"{VERTEX_BASE}/endpoints/openapi/chat/completions",
                       headers={"Authorization": f"Bearer {VERTEX_TOKEN}"},
                       json={"model": model, "messages": MSGS, **body})


def sse_data(text: str) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        if block.strip():
            event = re.search(r"^event: (.*)$", block, re.M)
            data = re.search(r"^data: (.*)$", block, re.M)
            assert data is not None
            out.append((event.group(1) if event else None, data.group(1)))
    return out


# ---- event-stream encoder ---------------------------------------------------------------------


def test_event_stream_encoder_round_trips_through_botocore() -> None:
    frame = encode_event_message([(":event-type", "messageStop"), ("x-ü", "välue")],
                                 b'{"stopReason":"end_turn"}')
    [message] = frames(frame)
    assert message.headers == {":event-type": "messageStop", "x-ü": "välue"}
    assert message.payload == b'{"stopReason":"end_turn"}'
    corrupt = bytearray(frame)
    corrupt[-6] ^= 1  # one payload bit: the message CRC must catch it
    with pytest.raises(ChecksumMismatch):
        frames(bytes(corrupt))


# ---- Bedrock Converse -------------------------------------------------------------------------


def test_bedrock_converse_json_signed_by_botocore(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script_for(NOVA, ok("Hello there", usage=(12, 3), cached=5), ok("plain", usage=(4, 1)))
    r = bedrock(fp, client)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["x-amzn-RequestId"]
    body = r.json()
    assert body["output"] == {"message": {"role": "assistant",
                                          "content": [{"text": "Hello there"}]}}
    assert body["stopReason"] == "end_turn"
    assert body["usage"] == {"inputTokens": 12, "outputTokens": 3, "totalTokens": 20,
                             "cacheReadInputTokens": 5}
    assert isinstance(body["metrics"]["latencyMs"], int) and body["metrics"]["latencyMs"] >= 1
    assert "cacheReadInputTokens" not in bedrock(fp, client).json()["usage"]
    req = fp.requests[0]
    assert (req.model, req.cloud, req.stream) == (NOVA, "bedrock", False)
    assert req.target == f"{NOVA_PATH}/converse"  # sent single-encoded, signed double-encoded


def test_bedrock_tool_use_and_max_tokens(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(ok("", tool_calls=[tool_call("get_weather", {"city": "Oslo"}, id="tooluse_1")]),
              ok("cut", finish_reason="length"))
    body = bedrock(fp, client).json()
    assert body["output"]["message"]["content"] == [
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}}]
    assert body["stopReason"] == "tool_use"
    assert bedrock(fp, client).json()["stopReason"] == "max_tokens"


def test_bedrock_converse_stream_decodes_with_botocore(fp: FakeProvider,
                                                       client: httpx.Client) -> None:
    fp.script(ok("Hello brave new world", usage=(7, 4),
                 tool_calls=[tool_call("lookup", {"q": "fjords", "n": 3}, id="tooluse_9")]))
    r = bedrock(fp, client, "converse-stream")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
    messages = frames(r.content)
    assert all(m.headers[":message-type"] == "event"
               and m.headers[":content-type"] == "application/json" for m in messages)
    events = payloads(messages)
    names = [name for name, _ in events]
    assert names == (["messageStart"] + ["contentBlockDelta"] * 4 + ["contentBlockStop",
                     "contentBlockStart"] + ["contentBlockDelta"] * 3
                     + ["contentBlockStop", "messageStop", "metadata"])
    assert events[0][1] == {"role": "assistant"}
    assert "".join(p["delta"]["text"] for n, p in events[1:5]) == "Hello brave new world"
    assert all(p["contentBlockIndex"] == 0 for _, p in events[1:6])
    assert events[6][1] == {"contentBlockIndex": 1,
                            "start": {"toolUse": {"toolUseId": "tooluse_9", "name": "lookup"}}}
    tool_json = "".join(p["delta"]["toolUse"]["input"] for _, p in events[7:10])
    assert json.loads(tool_json) == {"q": "fjords", "n": 3}
    assert events[11][1] == {"stopReason": "tool_use"}
    assert events[12][1]["usage"] == {"inputTokens": 7, "outputTokens": 4, "totalTokens": 11}
    assert events[12][1]["metrics"]["latencyMs"] >= 1
    assert fp.requests[0].stream


def test_botocore_client_talks_to_the_fake(fp: FakeProvider) -> None:
    """The real AWS client: SigV4 over a modelId with ':', JSON and event-stream parsing, and
    the error type from ``x-amzn-ErrorType``."""
    session = botocore.session.Session()
    aws = session.create_client(
        "bedrock-runtime", region_name=REGION, endpoint_url=fp.base_url,
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        config=botocore.config.Config(retries={"total_max_attempts": 1}))
    fp.script_for(NOVA, ok("hi", usage=(3, 1)), status(429), ok("streamed text", usage=(2, 2)),
                  stream_error(1, code=429))
    messages = CONVERSE_BODY["messages"]
    reply = aws.converse(modelId=NOVA, messages=messages)
    assert reply["output"]["message"]["content"] == [{"text": "hi"}]
    assert reply["usage"] == {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4}
    with pytest.raises(botocore.exceptions.ClientError) as info:
        aws.converse(modelId=NOVA, messages=messages)
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    events = list(aws.converse_stream(modelId=NOVA, messages=messages)["stream"])
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events
                   if "contentBlockDelta" in e) == "streamed text"
    assert events[-1]["metadata"]["usage"]["totalTokens"] == 4
    stream = aws.converse_stream(modelId=NOVA, messages=messages)["stream"]
    with pytest.raises(botocore.exceptions.EventStreamError, match="throttlingException"):
        list(stream)
    aws.close()


def test_bedrock_stream_error_and_drop(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(stream_error(2, code=429, message="slow down"), stream_error(1),
              stream_drop(2))
    messages = frames(bedrock(fp, client, "converse-stream").content)
    assert [m.headers[":message-type"] for m in messages] == ["event"] * 3 + ["exception"]
    assert messages[-1].headers[":exception-type"] == "throttlingException"
    assert json.loads(messages[-1].payload) == {"message": "slow down"}
    last = frames(bedrock(fp, client, "converse-stream").content)[-1]
    assert last.headers[":exception-type"] == "modelStreamErrorException"
    assert json.loads(last.payload)["originalStatusCode"] == 529
    received = b""
    raw_body = json.dumps(CONVERSE_BODY).encode()
    path = f"{NOVA_PATH}/converse-stream"
    with pytest.raises(CONNECTION_FAILURES), client.stream(
            "POST", path, content=raw_body,
            headers=signed_headers(fp.base_url + path, raw_body)) as r:
        for piece in r.iter_raw():
            received += piece
    names = [name for name, _ in payloads(frames(received))]
    assert names == ["messageStart", "contentBlockDelta", "contentBlockDelta"]


@pytest.mark.parametrize(("code", "error_type"), [
    (429, "ThrottlingException"), (400, "ValidationException"),
    (403, "AccessDeniedException"), (500, "InternalServerException"),
    (503, "ServiceUnavailableException"),
])
def test_bedrock_scripted_errors(fp: FakeProvider, client: httpx.Client, code: int,
                                 error_type: str) -> None:
    fp.script(status(code, headers={"Retry-After": "2"}))
    r = bedrock(fp, client, "converse-stream")  # errors come before any stream
    assert r.status_code == code and aws_type(r) == error_type
    assert r.headers["x-amzn-ErrorType"].endswith("/com.amazon.bedrock/")
    assert r.headers["retry-after"] == "2"
    assert set(r.json()) == {"message"}


def test_bedrock_malformed_bodies(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(malformed("wrong_shape"), malformed("not_json"), malformed("not_json"))
    assert bedrock(fp, client).json()["output"] == "nope"
    assert bedrock(fp, client).text.startswith("<html>")
    [message] = frames(bedrock(fp, client, "converse-stream").content)
    with pytest.raises(ValueError):
        json.loads(message.payload)


# ---- SigV4 verification -----------------------------------------------------------------------


def test_sigv4_refusals(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(ok("only for a valid signature"))
    path = f"{NOVA_PATH}/converse"
    url = fp.base_url + path
    body = json.dumps(CONVERSE_BODY).encode()

    def refused(r: httpx.Response, error_type: str) -> str:
        assert r.status_code == 403 and aws_type(r) == error_type
        assert r.headers["x-amzn-ErrorType"].endswith("/com.amazon.coral.service/")
        assert not re.search(r"[0-9a-f]{64}", r.text)  # never a signature
        assert SECRET not in r.text
        message: str = r.json()["message"]
        return message

    tampered = body.replace(b"Say hi", b"Say ho")
    r = client.post(path, content=tampered, headers=signed_headers(url, body))
    assert "signature we calculated does not match" in refused(r, "InvalidSignatureException")
    headers = signed_headers(url, body)
    headers["Content-Type"] = "application/json; charset=utf-8"  # a signed header changed
    refused(client.post(path, content=body, headers=headers), "InvalidSignatureException")
    r = client.post(path, content=body, headers=signed_headers(url, body, secret="wrong"))
    refused(r, "InvalidSignatureException")
    r = client.post(path, content=body, headers=signed_headers(url, body, key_id="AKIDUNKNOWN"))
    assert refused(r, "UnrecognizedClientException") == (
        "The security token included in the request is invalid.")
    r = client.post(path, content=body, headers=signed_headers(url, body, region="us-east-1"))
    assert "region" in refused(r, "InvalidSignatureException")
    r = client.post(path, content=body, headers=signed_headers(url, body, token="unexpected"))
    refused(r, "UnrecognizedClientException")
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert refused(r, "MissingAuthenticationTokenException") == "Missing Authentication Token"
    assert fp.pending() == 1 and all(req.step is None for req in fp.requests)
    r = client.post(path, content=body, headers=signed_headers(url, body))
    assert r.json()["output"]["message"]["content"][0]["text"] == "only for a valid signature"


def test_sigv4_session_token_and_query() -> None:
    creds = AwsCredentialsForFake(KEY_ID, SECRET, session_token="session-tok", region=REGION)
    assert "session-tok" not in repr(creds) and SECRET not in repr(creds)
    with FakeProvider(aws=creds) as fp, httpx.Client(base_url=fp.base_url,
                                                     trust_env=False) as client:
        assert bedrock(fp, client, token="session-tok").status_code == 200
        assert bedrock(fp, client).status_code == 403  # token configured, none sent
        assert aws_type(bedrock(fp, client, token="other-tok")) == "UnrecognizedClientException"
        path = f"{NOVA_PATH}/converse?b=2&a=x%2Fy&a=1"
        body = json.dumps(CONVERSE_BODY).encode()
        r = client.post(path, content=body, headers=signed_headers(fp.base_url + path, body,
                                                                   token="session-tok"))
        assert r.status_code == 200
        assert fp.errors == []


def test_sigv4_clock_skew_is_refused() -> None:
    url = "https://bedrock-runtime.eu-west-1.amazonaws.com/model/m/converse"
    body = b"{}"
    headers = signed_headers(url, body)
    pairs = [("Host", "bedrock-runtime.eu-west-1.amazonaws.com"), *headers.items()]
    assert verify_sigv4(AWS, "POST", "/model/m/converse", pairs, body) is None
    stamp = headers["X-Amz-Date"]
    later = verify_sigv4(AWS, "POST", "/model/m/converse", pairs, body,
                         now=_epoch(stamp) + 3600)
    assert later is not None and later.error_type == "InvalidSignatureException"
    assert "expired" in later.message
    changed_host = [("Host", "evil.example"), *headers.items()]
    mismatch = verify_sigv4(AWS, "POST", "/model/m/converse", changed_host, body)
    assert mismatch is not None and mismatch.error_type == "InvalidSignatureException"


def _epoch(stamp: str) -> float:
    import calendar
    import time
    return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))


# ---- Azure OpenAI -----------------------------------------------------------------------------


def test_azure_openai_json_and_stream(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script_for(DEPLOYMENT, ok("Hi from Azure", usage=(5, 2)), ok("Streamed reply"))
    r = azure(client)
    assert r.status_code == 200 and r.headers["apim-request-id"]
    body = r.json()
    assert body["model"] == DEPLOYMENT
    assert body["choices"][0]["message"]["content"] == "Hi from Azure"
    assert body["choices"][0]["content_filter_results"]["violence"] == {
        "filtered": False, "severity": "safe"}
    assert body["prompt_filter_results"][0]["prompt_index"] == 0
    assert body["usage"]["prompt_tokens"] == 5
    r = azure(client, stream=True, stream_options={"include_usage": True})
    chunks = [json.loads(d) for _, d in sse_data(r.text) if d != "[DONE]"]
    assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"]) == "Streamed reply"
    assert chunks[-1]["usage"]["total_tokens"] > 0
    req = fp.requests[0]
    assert (req.model, req.cloud) == (DEPLOYMENT, "azure")


def test_azure_openai_sdk(fp: FakeProvider) -> None:
    fp.script_for(DEPLOYMENT, ok("via the SDK"), ok_stream("streamed via the SDK"))
    sdk = openai.AzureOpenAI(azure_endpoint=fp.base_url, api_key=AZURE_KEY,
                             api_version=API_VERSION, max_retries=0)
    reply = sdk.chat.completions.create(model=DEPLOYMENT, messages=[
        {"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "via the SDK"
    stream = sdk.chat.completions.create(model=DEPLOYMENT, stream=True, messages=[
        {"role": "user", "content": "hi"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "streamed via the SDK")
    sdk.close()
    assert fp.requests[0].target.endswith(f"?api-version={API_VERSION}")


def test_azure_refusals(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(ok("after auth"))
    for headers in ({"api-key": "wrong"}, {}):
        r = azure(client, headers=headers)
        assert r.status_code == 401
        assert r.json() == {"error": {"code": "401", "message": (
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.")}}
    for token in ("not-the-token", AZURE_KEY):  # the key is no bearer token on this route
        r = azure(client, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        assert r.json()["error"]["message"].startswith("Unauthorized. Access token is missing")
    assert azure(client, version=None).json() == {
        "error": {"code": "404", "message": "Resource not found"}}
    assert azure(client, version="latest").status_code == 404
    r = azure(client, "no-such-deployment")
    assert r.status_code == 404 and r.json()["error"]["code"] == "DeploymentNotFound"
    assert fp.pending() == 1
    r = azure(client, headers={"Authorization": f"Bearer {ENTRA}"})
    assert r.json()["choices"][0]["message"]["content"] == "after auth"


def test_azure_429_and_content_filter(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(status(429, headers={"Retry-After": "3"}), content_filter(),
              content_filter("jailbreak"), content_filter("hate", "high"))
    r = azure(client)
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert r.json()["error"]["code"] == "429"
    assert "retry after 3 seconds" in r.json()["error"]["message"]
    r = azure(client)
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["param"], error["status"], error["type"]) == (
        "content_filter", "prompt", 400, None)
    assert error["message"].startswith("The response was filtered due to the prompt triggering "
                                       "Azure OpenAI's content management policy.")
    assert error["innererror"] == {"code": "ResponsibleAIPolicyViolation",
                                   "content_filter_result": {
                                       "hate": {"filtered": False, "severity": "safe"},
                                       "jailbreak": {"filtered": False, "detected": False},
                                       "self_harm": {"filtered": False, "severity": "safe"},
                                       "sexual": {"filtered": False, "severity": "safe"},
                                       "violence": {"filtered": True, "severity": "medium"}}}
    r = azure(client, stream=True)  # the prompt is filtered before any stream starts
    assert r.status_code == 400
    assert r.json()["error"]["innererror"]["content_filter_result"]["jailbreak"] == {
        "filtered": True, "detected": True}
    sdk = openai.AzureOpenAI(azure_endpoint=fp.base_url, api_key=AZURE_KEY,
                             api_version=API_VERSION, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model=DEPLOYMENT, messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "content_filter"
    sdk.close()
    assert isinstance(fp.requests[-1].step, Status)
    with pytest.raises(ValueError):
        content_filter("profanity")


# ---- Azure AI Foundry -------------------------------------------------------------------------


def test_foundry_models_route(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script_for("mistral-large", ok("bonjour"), status(429))
    url = "/models/chat/completions?api-version=2024-05-01-preview"
    body = {"model": "mistral-large", "messages": MSGS}
    r = client.post(url, headers={"api-key": AZURE_KEY}, json=body)
    assert r.json()["choices"][0]["message"]["content"] == "bonjour"
    assert "prompt_filter_results" not in r.json()
    r = client.post(url, headers={"Authorization": f"Bearer {AZURE_KEY}"}, json=body)
    assert r.status_code == 429 and r.json()["error"]["code"] == "429"
    r = client.post("/models/chat/completions", headers={"api-key": AZURE_KEY}, json=body)
    assert r.status_code == 400 and r.json()["error"] == {
        "code": "BadRequest", "message": "Missing required query parameter: api-version"}
    r = client.post(url, headers={"api-key": AZURE_KEY}, json={"messages": MSGS})
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_model_name"
    r = client.post(url, headers={"api-key": AZURE_KEY}, json={**body, "model": "phi-9"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_model"
    r = client.post(url, headers={"api-key": "wrong"}, json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "401"
    assert fp.requests[0].cloud == "azure_ai"


def test_foundry_anthropic_route(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script_for("claude-foundry", ok("hello", usage=(9, 1)), ok_stream("streamed hello"),
                  status(429), stream_error(1, code=529))
    body = {"model": "claude-foundry", "max_tokens": 32, "messages": MSGS}
    version = {"anthropic-version": "2023-06-01"}
    r = client.post("/anthropic/v1/messages", headers={"x-api-key": AZURE_KEY, **version},
                    json=body)
    assert r.json()["type"] == "message" and r.json()["content"][0]["text"] == "hello"
    r = client.post("/anthropic/v1/messages", headers={"api-key": AZURE_KEY, **version},
                    json={**body, "stream": True})
    events = sse_data(r.text)
    assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
    r = client.post("/anthropic/v1/messages", headers={"api-key": AZURE_KEY}, json=body)
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    r = client.post("/anthropic/v1/messages", headers={"api-key": AZURE_KEY},
                    json={**body, "stream": True})
    assert sse_data(r.text)[-1][0] == "error"
    r = client.post("/anthropic/v1/messages", headers={"x-api-key": "wrong"}, json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "401"


# ---- Vertex AI --------------------------------------------------------------------------------


def test_vertex_openapi_chat(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script_for("google/gemini-2.5-flash", ok("gemini says hi", usage=(6, 3)),
                  ok("streamed gemini"), status(429))
    r = vertex_openai(client)
    assert r.json()["model"] == "google/gemini-2.5-flash"
    assert r.json()["choices"][0]["message"]["content"] == "gemini says hi"
    r = vertex_openai(client, stream=True)
    chunks = [json.loads(d) for _, d in sse_data(r.text) if d != "[DONE]"]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == (
        "streamed gemini")
    r = vertex_openai(client)
    assert r.status_code == 429
    assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert r.json()["error"]["code"] == 429
    req = fp.requests[0]
    assert req.cloud == "vertex" and req.path.startswith("/v1/projects/proj-1/locations/"
                                                         "europe-west4/")


def test_vertex_claude_raw_predict(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script_for(CLAUDE, ok("claude on vertex", usage=(11, 4), cached=2),
                  ok("streamed claude"), stream_error(1, code=529))
    r = vertex_claude(client)
    body = r.json()
    assert body["model"] == CLAUDE and body["content"][0]["text"] == "claude on vertex"
    assert body["usage"]["cache_read_input_tokens"] == 2
    r = vertex_claude(client, "streamRawPredict", stream=True)
    events = sse_data(r.text)
    assert [e for e, _ in events][:2] == ["message_start", "ping"]
    assert "".join(json.loads(d)["delta"]["text"] for e, d in events
                   if e == "content_block_delta") == "streamed claude"
    r = vertex_claude(client, "streamRawPredict", stream=True)
    assert sse_data(r.text)[-1][0] == "error"
    assert [req.model for req in fp.requests] == [CLAUDE] * 3


def test_vertex_refusals_and_errors(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script_for(CLAUDE, status(429), status(529), reset())
    r = vertex_claude(client, token=None)
    assert r.status_code == 401
    error = r.json()["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
    assert error["details"][0]["reason"] == "CREDENTIALS_MISSING"
    r = vertex_claude(client, token="wrong")
    assert r.status_code == 401 and r.json()["error"]["message"].startswith(
        "Request had invalid authentication credentials.")
    r = vertex_claude(client, model=CLAUDE)
    assert r.status_code == 400 and r.json()["error"] == {
        "type": "invalid_request_error", "message": "model: Extra inputs are not permitted"}
    r = vertex_claude(client, anthropic_version=None)
    assert r.status_code == 400 and "anthropic_version" in r.json()["error"]["message"]
    r = client.post(f"{VERTEX_BASE}/publishers/google/models/gemini-2.5-flash:generateContent",
                    headers={"Authorization": f"Bearer {VERTEX_TOKEN}"}, json={})
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
    assert fp.pending() == 3
    r = vertex_claude(client)
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    r = vertex_claude(client)
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    with pytest.raises(CONNECTION_FAILURES):
        vertex_claude(client)


def test_vertex_other_publishers_speak_openai(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script_for("mistral-large-2411", ok("mistral on vertex"))
    r = client.post(f"{VERTEX_BASE}/publishers/mistralai/models/mistral-large-2411:rawPredict",
                    headers={"Authorization": f"Bearer {VERTEX_TOKEN}"},
                    json={"model": "mistral-large-2411", "messages": MSGS})
    assert r.json()["choices"][0]["message"]["content"] == "mistral on vertex"


# ---- the generic steps in every cloud dialect -------------------------------------------------


ROUTES = ["bedrock", "azure", "foundry_anthropic", "vertex_claude"]


def call(route: str, fp: FakeProvider, client: httpx.Client) -> httpx.Response:
    if route == "bedrock":
        return bedrock(fp, client)
    if route == "azure":
        return azure(client)
    if route == "vertex_claude":
        return vertex_claude(client)
    return client.post("/anthropic/v1/messages", headers={"api-key": AZURE_KEY},
                       json={"model": "claude-foundry", "max_tokens": 8, "messages": MSGS})


@pytest.mark.parametrize("route", ROUTES)
def test_generic_steps_in_cloud_dialects(route: str, fp: FakeProvider,
                                         client: httpx.Client) -> None:
    fp.script(delay(0.05, ok("late")), raw(418, b"teapot", content_type="text/plain"),
              malformed("empty"), reset())
    r = call(route, fp, client)
    assert r.status_code == 200 and "late" in r.text
    r = call(route, fp, client)
    assert (r.status_code, r.text) == (418, "teapot")
    r = call(route, fp, client)
    assert (r.status_code, r.content) == (200, b"")
    with pytest.raises(CONNECTION_FAILURES):
        call(route, fp, client)
    assert len(fp.requests) == 4 and fp.pending() == 0
