"""Wire pieces of the cloud dialects the fake provider speaks (stdlib only).

* The AWS event-stream encoder (``application/vnd.amazon.eventstream``, the framing of Bedrock's
  ``ConverseStream``): every message is ``total length (u32 BE) | headers length (u32 BE) |
  CRC32 of those 8 bytes | headers | payload | CRC32 of everything before it``; a header is
  ``name length (u8) | name | type (7 = string) | value length (u16 BE) | value``.
* An independent AWS Signature Version 4 verifier: it recomputes the signature of a request from
  the configured test credentials and says why a request is refused, never what the expected
  signature was.
* The bodies of Bedrock ``Converse``/``ConverseStream`` replies and the error shapes of AWS,
  Azure and Google.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import re
import struct
import time
import urllib.parse
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EVENT_STREAM = "application/vnd.amazon.eventstream"
SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_UNRESERVED = "-_.~"  # with letters and digits: RFC 3986 unreserved, never percent-encoded
_STRING_HEADER = 7


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# AWS event stream


def encode_event_message(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message with string-valued ``headers`` around ``payload``."""
    head = b""
    for name, value in headers:
        raw_name, raw_value = name.encode(), value.encode()
        if len(raw_name) > 255 or len(raw_value) > 65535:
            raise ValueError(f"event-stream header {name!r} is too long")
        head += (struct.pack(">B", len(raw_name)) + raw_name
                 + struct.pack(">BH", _STRING_HEADER, len(raw_value)) + raw_value)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    return message + struct.pack(">I", zlib.crc32(message))


def bedrock_event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """A ``ConverseStream`` event (``messageStart``, ``contentBlockDelta``, …)."""
    return encode_event_message(
        [(":event-type", event_type), (":content-type", "application/json"),
         (":message-type", "event")], _dumps(payload))


def bedrock_exception(exception_type: str, payload: Mapping[str, Any]) -> bytes:
    """An in-stream exception message (``throttlingException``, ``modelStreamErrorException``…)."""
    return encode_event_message(
        [(":exception-type", exception_type), (":content-type", "application/json"),
         (":message-type", "exception")], _dumps(payload))


# --------------------------------------------------------------------------------------------
# Bedrock Converse bodies


def bedrock_stop_reason(finish_reason: str | None, tools: bool) -> str:
    """Bedrock's ``stopReason`` for an OpenAI-style ``finish_reason`` (others pass through)."""
    if finish_reason is None:
        return "tool_use" if tools else "end_turn"
    return {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
            "content_filter": "content_filtered"}.get(finish_reason, finish_reason)


def bedrock_usage(usage: tuple[int, int], cached: int) -> dict[str, int]:
    """Converse ``usage``: ``inputTokens`` excludes cache reads, ``totalTokens`` counts all."""
    out = {"inputTokens": usage[0], "outputTokens": usage[1],
           "totalTokens": usage[0] + usage[1] + cached}
    if cached:
        out["cacheReadInputTokens"] = cached
    return out


@dataclass(frozen=True)
class BedrockToolUse:
    """A tool call as Bedrock reports it."""

    tool_use_id: str
    name: str
    input: Mapping[str, Any]


def bedrock_converse_body(text: str, tools: Sequence[BedrockToolUse], stop_reason: str,
                          usage: tuple[int, int] | None, cached: int,
                          latency_ms: int) -> bytes:
    """The JSON body of a ``Converse`` reply."""
    content: list[dict[str, Any]] = []
    if text or not tools:
        content.append({"text": text})
    content.extend({"toolUse": {"toolUseId": t.tool_use_id, "name": t.name,
                                "input": dict(t.input)}} for t in tools)
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason, "metrics": {"latencyMs": latency_ms}}
    if usage is not None:
        body["usage"] = bedrock_usage(usage, cached)
    return _dumps(body)


def bedrock_stream_events(pieces: Sequence[str], tools: Sequence[tuple[BedrockToolUse,
                                                                      Sequence[str]]],
                          stop_reason: str, usage: tuple[int, int] | None, cached: int,
                          latency_ms: int) -> list[tuple[bytes, bool]]:
    """The ``ConverseStream`` messages of a reply as ``(frame, is_content_delta)``: text deltas
    in block 0 (no ``contentBlockStart`` for text, as Bedrock does), then one block per tool
    with its input JSON split into ``tools[i][1]`` pieces."""
    events = [(bedrock_event("messageStart", {"role": "assistant"}), False)]
    index = 0
    if pieces or not tools:
        events.extend((bedrock_event("contentBlockDelta",
                                     {"contentBlockIndex": 0, "delta": {"text": piece}}), True)
                      for piece in pieces)
        events.append((bedrock_event("contentBlockStop", {"contentBlockIndex": 0}), False))
        index = 1
    for tool, parts in tools:
        events.append((bedrock_event("contentBlockStart", {
            "contentBlockIndex": index,
            "start": {"toolUse": {"toolUseId": tool.tool_use_id, "name": tool.name}}}), False))
        events.extend((bedrock_event("contentBlockDelta", {
            "contentBlockIndex": index, "delta": {"toolUse": {"input": part}}}), True)
            for part in parts)
        events.append((bedrock_event("contentBlockStop", {"contentBlockIndex": index}), False))
        index += 1
    events.append((bedrock_event("messageStop", {"stopReason": stop_reason}), False))
    metadata: dict[str, Any] = {"metrics": {"latencyMs": latency_ms}}
    if usage is not None:
        metadata = {"usage": bedrock_usage(usage, cached), **metadata}
    events.append((bedrock_event("metadata", metadata), False))
    return events


# --------------------------------------------------------------------------------------------
# Error shapes

_AWS_TYPES = {400: "ValidationException", 403: "AccessDeniedException",
              404: "ResourceNotFoundException", 408: "ModelTimeoutException",
              424: "ModelErrorException", 429: "ThrottlingException",
              500: "InternalServerException", 503: "ServiceUnavailableException",
              529: "ServiceUnavailableException"}
_AWS_STREAM_TYPES = {400: "validationException", 429: "throttlingException",
                     500: "internalServerException", 503: "serviceUnavailableException"}
_AWS_AUTH_TYPES = {"UnrecognizedClientException", "InvalidSignatureException",
                   "IncompleteSignatureException", "MissingAuthenticationTokenException"}
_AWS_MESSAGES = {429: "Too many requests, please wait before trying again.",
                 503: "Bedrock is unable to process your request."}


def aws_error_type(code: int) -> str:
    """The Bedrock Runtime exception name for an HTTP status."""
    return _AWS_TYPES.get(code, "InternalServerException" if code >= 500
                          else "ValidationException")


def aws_stream_exception_type(code: int) -> str:
    """The ``:exception-type`` of an in-stream error for an HTTP status; the rest are model
    stream errors (what an overloaded model mid-stream looks like)."""
    return _AWS_STREAM_TYPES.get(code, "modelStreamErrorException")


def aws_error(code: int, message: str | None, error_type: str | None = None
              ) -> tuple[list[tuple[str, str]], bytes]:
    """Headers (``x-amzn-ErrorType``) and JSON body of an AWS REST-JSON error."""
    kind = error_type or aws_error_type(code)
    namespace = ("com.amazon.coral.service" if kind in _AWS_AUTH_TYPES
                 else "com.amazon.bedrock")
    msg = message or _AWS_MESSAGES.get(code) or f"fake provider: {code}"
    return ([("x-amzn-ErrorType", f"{kind}:http://internal.amazon.com/coral/{namespace}/")],
            _dumps({"message": msg}))


def azure_error(code: str, message: str, **extra: Any) -> bytes:
    """Azure's ``{"error": {"code", "message", …}}``."""
    return _dumps({"error": {"code": code, "message": message, **extra}})


AZURE_KEY_DENIED = ("Access denied due to invalid subscription key or wrong API endpoint. Make "
                    "sure to provide a valid key for an active subscription and use a correct "
                    "regional API endpoint for your resource.")
AZURE_TOKEN_DENIED = ("Unauthorized. Access token is missing, invalid, audience is incorrect "
                      "(https://cognitiveservices.azure.com), or have expired.")
AZURE_DEPLOYMENT_NOT_FOUND = ("The API deployment for this resource does not exist. If you "
                              "created the deployment within the last 5 minutes, please wait a "
                              "moment and try again.")
AZURE_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766")
AZURE_FILTER_CATEGORIES = ("hate", "jailbreak", "self_harm", "sexual", "violence")


def azure_content_filter_body(category: str, severity: str, message: str | None = None,
                              param: str = "prompt") -> bytes:
    """Azure OpenAI's 400 ``content_filter`` error, ``category`` filtered at ``severity``
    (``jailbreak`` is reported as detected)."""
    if category not in AZURE_FILTER_CATEGORIES:
        raise ValueError(f"unknown content filter category {category!r}")
    result: dict[str, dict[str, Any]] = {}
    for name in AZURE_FILTER_CATEGORIES:
        hit = name == category
        result[name] = ({"filtered": hit, "detected": hit} if name == "jailbreak"
                        else {"filtered": hit, "severity": severity if hit else "safe"})
    return _dumps({"error": {
        "message": message or AZURE_FILTER_MESSAGE, "type": None, "param": param,
        "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation",
                       "content_filter_result": result}}})


def azure_prompt_filter_results() -> list[dict[str, Any]]:
    """The all-clear ``prompt_filter_results`` Azure OpenAI adds to replies."""
    return [{"prompt_index": 0, "content_filter_results": azure_filter_results()}]


def azure_filter_results() -> dict[str, dict[str, Any]]:
    """All categories unfiltered, as Azure reports them on a clean prompt or completion."""
    return {name: ({"filtered": False, "detected": False} if name == "jailbreak"
                   else {"filtered": False, "severity": "safe"})
            for name in AZURE_FILTER_CATEGORIES}


_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                  404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED",
                  499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                  503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_GOOGLE_MESSAGES = {
    401: ("Request had invalid authentication credentials. Expected OAuth 2 access token, login "
          "cookie or other valid authentication credential. See "
          "https://developers.google.com/identity/sign-in/web/devconsole-project."),
    429: ("Resource exhausted. Please try again later. Please refer to "
          "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more "
          "details."),
}
GOOGLE_CREDENTIALS_MISSING = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.")


def google_error(code: int, message: str | None = None, *, reason: str | None = None) -> bytes:
    """Google's ``{"error": {"code", "message", "status"}}`` (with an ``ErrorInfo`` detail when
    ``reason`` is given)."""
    err: dict[str, Any] = {
        "code": code,
        "message": message or _GOOGLE_MESSAGES.get(code) or f"fake provider: {code}",
        "status": _GOOGLE_STATUS.get(code, "INTERNAL" if code >= 500 else "UNKNOWN")}
    if reason is not None:
        err["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                           "reason": reason, "domain": "googleapis.com",
                           "metadata": {"service": "aiplatform.googleapis.com"}}]
    return _dumps({"error": err})


# --------------------------------------------------------------------------------------------
# SigV4 verification


@dataclass(frozen=True)
class AwsCredentialsForFake:
    """The AWS test credentials the fake accepts, and where it pretends to live.

    ``max_skew_seconds`` is how far ``X-Amz-Date`` may be from the fake's clock (AWS allows
    5 minutes; ``None`` turns the check off)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    service: str = "bedrock"
    max_skew_seconds: float | None = 300.0


@dataclass(frozen=True)
class SigV4Refusal:
    """Why a request was refused: HTTP status, AWS error type and a message (no secrets)."""

    status: int
    error_type: str
    message: str


_SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you "
                       "provided. Check your AWS Secret Access Key and signing method. Consult "
                       "the service documentation for details.")
_BAD_TOKEN = "The security token included in the request is invalid."


def _refuse(error_type: str, message: str) -> SigV4Refusal:
    return SigV4Refusal(403, error_type, message)


def sigv4_canonical_uri(raw_path: str) -> str:
    """The canonical URI of a non-S3 request: dot segments and empty segments removed, then
    every segment of the path *as sent* URI-encoded again (``%3A`` → ``%253A``)."""
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    path = "/" + "/".join(urllib.parse.quote(s, safe=_UNRESERVED) for s in segments)
    if raw_path.endswith("/") and segments:
        path += "/"
    return path


def sigv4_canonical_query(raw_query: str) -> str:
    """Query parameters decoded, strictly re-encoded and sorted by name, then value."""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((urllib.parse.quote(urllib.parse.unquote(name), safe=_UNRESERVED),
                      urllib.parse.quote(urllib.parse.unquote(value), safe=_UNRESERVED)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def sigv4_canonical_headers(headers: Sequence[tuple[str, str]],
                            signed: Sequence[str]) -> str | None:
    """``name:value\\n`` for each signed header (values trimmed, inner runs of spaces made one,
    repeats joined with ``,``); ``None`` when a signed header is missing."""
    lines: list[str] = []
    for name in signed:
        values = [" ".join(v.split()) for k, v in headers if k.lower() == name]
        if not values:
            return None
        lines.append(f"{name}:{','.join(values)}\n")
    return "".join(lines)


def sigv4_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key: HMAC chain from ``"AWS4" + secret`` over date, region, service."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _authorization_fields(value: str) -> dict[str, str] | None:
    match = re.fullmatch(rf"\s*{SIGV4_ALGORITHM}\s+(.*)", value, re.S)
    if match is None:
        return None
    fields: dict[str, str] = {}
    for part in match.group(1).split(","):
        name, sep, val = part.strip().partition("=")
        if sep:
            fields[name] = val.strip()
    return fields


def _amz_time(stamp: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


def verify_sigv4(creds: AwsCredentialsForFake, method: str, target: str,
                 headers: Sequence[tuple[str, str]], body: bytes,
                 now: float | None = None) -> SigV4Refusal | None:
    """Check the SigV4 ``Authorization`` of a request against ``creds``; ``None`` when valid.

    ``target`` is the request target as sent (path and query, still percent-encoded) and
    ``headers`` every header line in order (names in any case)."""
    first = {k.lower(): v for k, v in reversed(headers)}
    authorization = first.get("authorization")
    if not authorization:
        return _refuse("MissingAuthenticationTokenException", "Missing Authentication Token")
    fields = _authorization_fields(authorization)
    if fields is None or not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
        return _refuse("IncompleteSignatureException",
                       f"Authorization header requires the {SIGV4_ALGORITHM} algorithm with "
                       "'Credential', 'SignedHeaders' and 'Signature' parameters.")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return _refuse("IncompleteSignatureException",
                       "Credential must have the form "
                       "<key id>/<date>/<region>/<service>/aws4_request.")
    key_id, date, region, service, _ = scope
    if not hmac.compare_digest(key_id.encode(), creds.access_key_id.encode()):
        return _refuse("UnrecognizedClientException", _BAD_TOKEN)
    token = first.get("x-amz-security-token")
    if creds.session_token is None:
        if token is not None:
            return _refuse("UnrecognizedClientException", _BAD_TOKEN)
    elif token is None or not hmac.compare_digest(token.encode(), creds.session_token.encode()):
        return _refuse("UnrecognizedClientException", _BAD_TOKEN)
    refusal = _check_scope(creds, first.get("x-amz-date"), date, region, service, now)
    if refusal is not None:
        return refusal
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed or signed != sorted(signed) or "authorization" in signed:
        return _refuse("InvalidSignatureException",
                       "SignedHeaders must be sorted, lower-case, include 'host' and exclude "
                       "'authorization'.")
    body_hash = hashlib.sha256(body).hexdigest()
    payload_hash = first.get("x-amz-content-sha256", body_hash)
    if payload_hash not in (body_hash, UNSIGNED_PAYLOAD):
        return _refuse("InvalidSignatureException", "The provided 'x-amz-content-sha256' "
                       "header does not match what was computed.")
    canonical_headers = sigv4_canonical_headers(headers, signed)
    if canonical_headers is None:
        return _refuse("InvalidSignatureException", _SIGNATURE_MISMATCH)
    path, _, query = target.partition("?")
    canonical = "\n".join([method.upper(), sigv4_canonical_uri(path),
                           sigv4_canonical_query(query), canonical_headers,
                           ";".join(signed), payload_hash])
    string_to_sign = "\n".join([
        SIGV4_ALGORITHM, first["x-amz-date"], f"{date}/{region}/{service}/aws4_request",
        hashlib.sha256(canonical.encode()).hexdigest()])
    key = sigv4_signing_key(creds.secret_access_key, date, region, service)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), fields["Signature"].lower().encode()):
        return _refuse("InvalidSignatureException", _SIGNATURE_MISMATCH)
    return None


def _check_scope(creds: AwsCredentialsForFake, amz_date: str | None, date: str, region: str,
                 service: str, now: float | None) -> SigV4Refusal | None:
    """The credential scope and ``X-Amz-Date`` against the fake's region, service and clock."""
    if amz_date is None:
        return _refuse("IncompleteSignatureException",
                       "Authorization header requires existence of an 'X-Amz-Date' header.")
    stamp = _amz_time(amz_date)
    if stamp is None:
        return _refuse("IncompleteSignatureException",
                       "X-Amz-Date must be in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z'.")
    if date != amz_date[:8]:
        return _refuse("InvalidSignatureException",
                       f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                       f"of date from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'.")
    if region != creds.region:
        return _refuse("InvalidSignatureException",
                       "Credential should be scoped to a valid region.")
    if service != creds.service:
        return _refuse("InvalidSignatureException",
                       f"Credential should be scoped to correct service: '{creds.service}'.")
    clock = time.time() if now is None else now
    if creds.max_skew_seconds is not None and abs(clock - stamp) > creds.max_skew_seconds:
        return _refuse("InvalidSignatureException",
                       f"Signature expired or not yet valid: {amz_date} is more than "
                       f"{creds.max_skew_seconds:g} seconds from the server time.")
    return None
