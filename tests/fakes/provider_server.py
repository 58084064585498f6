"""A scriptable fake LLM provider: a real HTTP/1.1 server on 127.0.0.1 for tests and benchmarks.

The server runs on its own asyncio event loop in a background thread, so the same instance serves
sync tests, async tests driven by ``asyncio.run`` and benchmarks. Standard library only.

Wire formats:

* OpenAI-compatible ``POST …/chat/completions`` (any prefix: ``/v1``, ``/v1beta/openai``, …),
  JSON or SSE (``"stream": true``; usage chunk when ``stream_options.include_usage``).
* Anthropic Messages ``POST …/messages``, JSON or the real SSE event sequence.
* ``GET …/models`` (OpenAI or Anthropic listing shape) and ``GET …/models/{id}``.

Scripting: every generation request consumes the next step of the model's script
(``script_for``), else of the shared script (``script``), else gets the default step (``ok()``).
Model listings consume ``script_models`` steps. Every request is recorded in ``requests``.
``raw(...)`` answers with exact bytes (any status, headers, framing; huge or endless bodies)
for adversarial tests.

Cloud dialects (chosen by the request path; the wire pieces live in ``cloud_wire``):

* **AWS Bedrock Converse**: ``POST /model/{modelId}/converse`` (JSON) and
  ``…/converse-stream`` (binary AWS event stream, ``application/vnd.amazon.eventstream``:
  ``messageStart``, ``contentBlockStart`` (tool use only), ``contentBlockDelta``,
  ``contentBlockStop``, ``messageStop``, ``metadata``). The script key is the URL-decoded
  modelId (``eu.amazon.nova-lite-v1:0``). Errors carry ``x-amzn-ErrorType`` and
  ``{"message": …}``; ``stream_error`` becomes an exception message (``:message-type
  exception``; 429 ``throttlingException``, 400 ``validationException``, 500
  ``internalServerException``, 503 ``serviceUnavailableException``, any other code
  ``modelStreamErrorException``). With ``aws=AwsCredentialsForFake(...)`` every request's SigV4
  signature is recomputed independently (service ``bedrock``): 403 ``InvalidSignatureException``
  when it differs, ``UnrecognizedClientException`` for an unknown key id or a wrong/missing
  session token, ``MissingAuthenticationTokenException`` without ``Authorization``.
* **Azure OpenAI**: ``POST /openai/deployments/{deployment}/chat/completions?api-version=…``
  (OpenAI dialect plus Azure's ``prompt_filter_results``/``content_filter_results``; script
  key = deployment). A missing or malformed ``api-version`` gets what Azure really answers,
  404 ``{"error": {"code": "404", "message": "Resource not found"}}``; a deployment outside
  ``azure_deployments`` (when given) 404 ``DeploymentNotFound``.
* **Azure AI Foundry**: ``POST /models/chat/completions?api-version=…`` (OpenAI dialect, model
  in the body; missing api-version → 400 ``BadRequest``, no model → 400 ``no_model_name``, a
  model outside ``azure_deployments`` → 404 ``unknown_model``) and ``POST
  /anthropic/v1/messages`` (Anthropic dialect). Azure auth: ``api-key: <api_key>`` (also
  ``x-api-key`` on ``/anthropic``, ``Authorization: Bearer <api_key>`` on the Foundry routes)
  or ``Authorization: Bearer <azure_entra_token>``; otherwise 401 ``{"error": {"code": "401",
  "message": "Access denied due to invalid subscription key or wrong API endpoint…"}}``.
  ``content_filter()`` scripts Azure's 400 ``content_filter`` error.
* **Google Vertex AI**: ``POST /v1/projects/{p}/locations/{l}/endpoints/openapi/chat/completions``
  (OpenAI dialect, model in the body, e.g. ``google/gemini-2.5-flash``) and ``POST
  /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict`` /
  ``:streamRawPredict`` (Anthropic dialect; the body must carry ``anthropic_version:
  vertex-2023-10-16`` and no ``model``, else 400; script key = the model in the path; the
  stream follows the body's ``"stream": true``). Other publishers' ``rawPredict`` (Mistral,
  AI21) speak the OpenAI dialect. With ``vertex_token=…`` requests need ``Authorization:
  Bearer <token>``, else 401 ``UNAUTHENTICATED``. Errors use Google's ``{"error": {"code",
  "message", "status"}}`` (529 on the Anthropic route keeps Anthropic's ``overloaded_error``).

Only the auth of the route's own cloud is checked (``api_key`` guards the plain and Azure
routes; ``aws`` Bedrock; ``vertex_token`` Vertex); ``None`` leaves a route open.

Usage numbers in ``ok(usage=(P, C), cached=K)`` are written verbatim into the dialect's fields:
``prompt_tokens``/``completion_tokens``/``prompt_tokens_details.cached_tokens`` (OpenAI) and
``input_tokens``/``output_tokens``/``cache_read_input_tokens`` (Anthropic) and
``inputTokens``/``outputTokens``/``cacheReadInputTokens`` (Bedrock; the last only when K > 0,
``totalTokens`` = P + C + K). (Real OpenAI counts cached tokens inside ``prompt_tokens``; real
Anthropic and Bedrock leave them out of the input count — scripts choose P accordingly.)

Scripted ``status(code)`` replies take the route's error shape: AWS (``x-amzn-ErrorType``
from the code: 400 ValidationException, 403 AccessDeniedException, 404
ResourceNotFoundException, 429 ThrottlingException, 500 InternalServerException, 503
ServiceUnavailableException, …), Azure's ``{"error": {"code": "429", …}}`` for 401/404/429 on
the Azure OpenAI-dialect routes (OpenAI's shape for other codes), Google's on Vertex, and the
dialect's own shape everywhere else.

    with FakeProvider(api_key="sk-test") as fp:
        fp.script(status(429, headers={"Retry-After": "2"}), ok(text="hello"))
        ... point the client at fp.base_url + "/v1" ...
        assert len(fp.wait_for_requests(2)) == 2

    aws = AwsCredentialsForFake("AKIDEXAMPLE", "secret", region="eu-west-1")
    with FakeProvider(aws=aws, vertex_token="ya29.test", azure_deployments=["gpt-4o"]) as fp:
        fp.script_for("eu.amazon.nova-lite-v1:0", status(429), ok("hi"))  # Bedrock modelId
        fp.script_for("gpt-4o", content_filter())                         # Azure deployment
        fp.script_for("claude-sonnet-4@20250514", ok_stream())            # Vertex path model
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, TypeAlias

from .cloud_wire import (
    AZURE_DEPLOYMENT_NOT_FOUND,
    AZURE_KEY_DENIED,
    AZURE_TOKEN_DENIED,
    EVENT_STREAM,
    GOOGLE_CREDENTIALS_MISSING,
    AwsCredentialsForFake,
    BedrockToolUse,
    aws_error,
    aws_stream_exception_type,
    azure_content_filter_body,
    azure_error,
    azure_filter_results,
    azure_prompt_filter_results,
    bedrock_converse_body,
    bedrock_event,
    bedrock_exception,
    bedrock_stop_reason,
    bedrock_stream_events,
    encode_event_message,
    google_error,
    verify_sigv4,
)

Dialect = Literal["openai", "anthropic"]
Wire = Literal["openai", "anthropic", "bedrock"]  # a generation route's body format
Cloud = Literal["bedrock", "azure", "azure_ai", "vertex"]
MalformedKind = Literal["not_json", "wrong_shape", "empty"]

DEFAULT_TEXT = "Hello from the fake provider."
_HEAD_LIMIT = 1 << 20
_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"


# --------------------------------------------------------------------------------------------
# Script steps


@dataclass(frozen=True)
class ToolCall:
    """A tool call the fake model makes (OpenAI ``tool_calls`` / Anthropic ``tool_use``)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Ok:
    """A successful reply; streamed if the request asked for it (or if ``stream`` forces it)."""

    text: str = DEFAULT_TEXT
    usage: tuple[int, int] | Literal["auto"] | None = "auto"
    cached: int = 0
    tool_calls: tuple[ToolCall, ...] = ()
    stream: bool | None = None
    chunks: int | None = None
    chunk_delay: float = 0.0
    finish_reason: str | None = None
    model: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    chunked: bool = True


@dataclass(frozen=True)
class Status:
    """An error status with a provider-shaped error body (or the given body)."""

    code: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    message: str | None = None
    content_type: str = _JSON


@dataclass(frozen=True)
class Delay:
    """Sleep (without blocking other connections), then perform ``then``."""

    seconds: float
    then: Step = field(default_factory=Ok)


@dataclass(frozen=True)
class Reset:
    """Read the request, then drop the connection without a response (RST unless ``rst=False``,
    which closes with a FIN instead)."""

    rst: bool = True


@dataclass(frozen=True)
class Malformed:
    """200 with a body that is not JSON, JSON of the wrong shape, or empty."""

    kind: MalformedKind = "not_json"


@dataclass(frozen=True)
class StreamDrop:
    """Stream ``after_chunks`` content chunks, then abort the connection mid-body.

    For a non-stream request: announce the full Content-Length, send half of it, abort."""

    after_chunks: int = 2
    text: str | None = None
    rst: bool = False
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class StreamError:
    """Stream ``after_chunks`` content chunks, then an in-stream error event, then end the
    stream cleanly (OpenAI: ``data: {"error": …}``; Anthropic: ``event: error``).

    For a non-stream request: an error status ``code``."""

    after_chunks: int = 1
    code: int = 529
    message: str | None = None


@dataclass(frozen=True)
class Raw:
    """Exactly these bytes, for adversarial replies: a status line, headers and ``body``
    written ``repeat`` times (``None``: forever, until the client goes away), framed by
    ``Content-Length`` (``"length"``; ``length`` announces another size, then the connection
    closes), ``Transfer-Encoding: chunked`` or by closing the connection (``"close"``). The
    connection always closes after a raw reply."""

    code: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = _JSON
    repeat: int | None = 1
    framing: Literal["length", "chunked", "close"] = "length"
    length: int | None = None


Step: TypeAlias = Ok | Status | Delay | Reset | Malformed | StreamDrop | StreamError | Raw


def _header_pairs(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in (headers or {}).items())


def tool_call(name: str, arguments: Mapping[str, Any] | None = None, *,
              id: str | None = None) -> ToolCall:
    """A scripted tool call; ``id`` is generated (``call_…`` / ``toolu_…``) when omitted."""
    return ToolCall(name=name, arguments=dict(arguments or {}), id=id)


def ok(text: str = DEFAULT_TEXT, *, usage: tuple[int, int] | Literal["auto"] | None = "auto",
       cached: int = 0, tool_calls: Sequence[ToolCall] = (), stream: bool | None = None,
       chunks: int | None = None, chunk_delay: float = 0.0, finish_reason: str | None = None,
       model: str | None = None, headers: Mapping[str, str] | None = None,
       chunked: bool = True) -> Ok:
    """A success. ``usage=(prompt, completion)``; ``"auto"`` estimates (~4 chars a token) and
    ``None`` omits usage. ``stream=None`` follows the request. ``chunks`` splits the text into
    that many content deltas (default: one per word); ``chunk_delay`` sleeps between events.
    ``finish_reason`` is OpenAI's (``stop``/``length``/``tool_calls``; mapped to Anthropic's
    ``end_turn``/``max_tokens``/``tool_use``, other values pass through). ``model`` overrides
    the echoed request model. ``chunked=False`` delimits a stream by closing the connection."""
    return Ok(text=text, usage=usage, cached=cached, tool_calls=tuple(tool_calls), stream=stream,
              chunks=chunks, chunk_delay=chunk_delay, finish_reason=finish_reason, model=model,
              headers=_header_pairs(headers), chunked=chunked)


def ok_stream(text: str = DEFAULT_TEXT, *,
              usage: tuple[int, int] | Literal["auto"] | None = "auto", cached: int = 0,
              tool_calls: Sequence[ToolCall] = (), chunks: int | None = None,
              chunk_delay: float = 0.0, finish_reason: str | None = None,
              model: str | None = None, headers: Mapping[str, str] | None = None,
              chunked: bool = True) -> Ok:
    """``ok(...)`` that answers with SSE even when the request did not ask to stream."""
    return ok(text, usage=usage, cached=cached, tool_calls=tool_calls, stream=True, chunks=chunks,
              chunk_delay=chunk_delay, finish_reason=finish_reason, model=model, headers=headers,
              chunked=chunked)


def status(code: int, headers: Mapping[str, str] | None = None,
           body: str | bytes | Mapping[str, Any] | None = None, *, message: str | None = None,
           content_type: str = _JSON) -> Status:
    """An error reply. ``body=None`` writes the dialect's error shape (OpenAI ``{"error": {…}}``,
    Anthropic ``{"type": "error", "error": {…}}``) with ``message``; a mapping is JSON-encoded,
    str/bytes are sent as they are."""
    raw: bytes | None
    if body is None:
        raw = None
    elif isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = _dumps(body)
    return Status(code=code, headers=_header_pairs(headers), body=raw, message=message,
                  content_type=content_type)


def raw(code: int = 200, body: bytes = b"", *, headers: Mapping[str, str] | None = None,
        content_type: str | None = _JSON, repeat: int | None = 1,
        framing: Literal["length", "chunked", "close"] = "length",
        length: int | None = None) -> Raw:
    """An exact reply (see ``Raw``): e.g. ``raw(200, b"x" * 65536, repeat=None,
    framing="chunked")`` is an endless body, ``raw(500, b"[" * 600 + b"]" * 600)`` a deeply
    nested error."""
    if repeat is None and framing == "length":
        raise ValueError("an endless body needs framing `chunked` or `close`")
    return Raw(code=code, body=body, headers=_header_pairs(headers), content_type=content_type,
               repeat=repeat, framing=framing, length=length)


def delay(seconds: float, then: Step | None = None) -> Delay:
    """Sleep ``seconds`` after reading the request, then perform ``then`` (default ``ok()``)."""
    return Delay(seconds=seconds, then=then if then is not None else Ok())


def reset(*, rst: bool = True) -> Reset:
    """Close the connection after reading the request, with no response."""
    return Reset(rst=rst)


def malformed(kind: MalformedKind = "not_json") -> Malformed:
    """200 whose body is not JSON (``not_json``), JSON of the wrong shape (``wrong_shape``) or
    empty (``empty``). Stream requests get SSE events with such data."""
    return Malformed(kind=kind)


def stream_drop(after_chunks: int = 2, *, text: str | None = None, rst: bool = False,
                chunk_delay: float = 0.0) -> StreamDrop:
    """Stream ``after_chunks`` content deltas, then abort. ``text=None`` makes a text long enough
    that the stream is visibly cut."""
    return StreamDrop(after_chunks=after_chunks, text=text, rst=rst, chunk_delay=chunk_delay)


def stream_error(after_chunks: int = 1, *, code: int = 529,
                 message: str | None = None) -> StreamError:
    """Stream ``after_chunks`` content deltas, then an error event (type from ``code``)."""
    return StreamError(after_chunks=after_chunks, code=code, message=message)


def content_filter(category: str = "violence", severity: str = "medium", *,
                   message: str | None = None, param: str = "prompt",
                   headers: Mapping[str, str] | None = None) -> Status:
    """Azure OpenAI's 400 ``content_filter`` error (``innererror.code``
    ``ResponsibleAIPolicyViolation``) with ``category`` (``hate``, ``jailbreak``,
    ``self_harm``, ``sexual``, ``violence``) filtered at ``severity``. Sent as is in any
    dialect, streamed requests included (Azure filters the prompt before streaming)."""
    return Status(code=400, headers=_header_pairs(headers),
                  body=azure_content_filter_body(category, severity, message, param))


# --------------------------------------------------------------------------------------------
# Recording


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str  # without the query string
    target: str  # as sent, with the query string
    headers: Mapping[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    json: Any  # parsed body, or None when empty / not JSON
    time: float  # time.monotonic() when the request head arrived
    connection: int  # 1-based id of the TCP connection (keep-alive reuse shows as equal ids)
    model: str | None  # the script key: body model, Bedrock modelId, Azure deployment, …
    step: Step | None  # the scripted step that answered it (None: auth/routing error)
    cloud: str | None = None  # "bedrock", "azure", "azure_ai", "vertex"; None: plain routes

    @property
    def stream(self) -> bool:
        if self.cloud == "bedrock":
            return self.path.endswith("/converse-stream")
        return isinstance(self.json, dict) and self.json.get("stream") is True


# --------------------------------------------------------------------------------------------
# Wire helpers


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _reason(code: int) -> str:
    if code == 529:
        return "Overloaded"
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _error_obj(dialect: Dialect, code: int, message: str | None) -> dict[str, Any]:
    msg = message or f"fake provider: {code} {_reason(code)}"
    if dialect == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(code, "api_error" if code >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": msg}}
    etype, ecode = _OPENAI_ERRORS.get(
        code, ("server_error" if code >= 500 else "invalid_request_error", None))
    return {"error": {"message": msg, "type": etype, "param": None, "code": ecode}}


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented credential."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _azure_message(step: Status) -> str:
    """Azure OpenAI's wording for its own 401/404/429 errors."""
    if step.code == 401:
        return AZURE_KEY_DENIED
    if step.code == 404:
        return "Resource not found"
    wait = next((v for k, v in step.headers if k.lower() == "retry-after"), "1")
    return ("Requests to the ChatCompletions_Create Operation have exceeded call rate limit of "
            f"your current OpenAI S0 pricing tier. Please retry after {wait} seconds.")


def _split_text(text: str, chunks: int | None) -> list[str]:
    if not text:
        return []
    if chunks is None:
        return re.findall(r"\s*\S+\s*$|\s*\S+", text) or [text]
    n = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), n)
    out: list[str] = []
    pos = 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(text[pos:pos + step])
        pos += step
    return out


def _split_json(s: str, parts: int = 3) -> list[str]:
    size = max(1, -(-len(s) // parts))
    return [s[i:i + size] for i in range(0, len(s), size)] or [""]


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, bytes) else _dumps(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"


def _chunk_frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _anthropic_stop(finish_reason: str | None, tools: bool) -> str:
    if finish_reason is None:
        return "tool_use" if tools else "end_turn"
    return {"stop": "end_turn", "length": "max_tokens",
            "tool_calls": "tool_use"}.get(finish_reason, finish_reason)


@dataclass
class _Exchange:
    """A parsed request plus what the responder needs to answer it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    model: str | None
    dialect: Wire
    endpoint: Literal["chat", "models", "model", "other"]
    keep_alive: bool
    request_id: str
    cloud: Cloud | None = None
    arrived: float = 0.0

    @property
    def wants_stream(self) -> bool:
        if self.dialect == "bedrock":
            return self.path.endswith("/converse-stream")
        return isinstance(self.json, dict) and self.json.get("stream") is True

    @property
    def chat_dialect(self) -> Dialect:
        """The error/SSE dialect of a non-Bedrock route."""
        return "anthropic" if self.dialect == "anthropic" else "openai"

    @property
    def cloud_headers(self) -> list[tuple[str, str]]:
        """The request-id header the cloud itself sends."""
        if self.cloud == "bedrock":
            return [("x-amzn-RequestId", self.request_id)]
        if self.cloud in ("azure", "azure_ai"):
            return [("apim-request-id", self.request_id)]
        return []

    @property
    def stream_content_type(self) -> str:
        return EVENT_STREAM if self.dialect == "bedrock" else _SSE

    @property
    def include_usage(self) -> bool:
        opts = self.json.get("stream_options") if isinstance(self.json, dict) else None
        return isinstance(opts, dict) and opts.get("include_usage") is True


@dataclass(frozen=True)
class _Route:
    """Where a request goes: endpoint kind, body format, cloud and script key."""

    endpoint: Literal["chat", "models", "model", "other"]
    dialect: Wire
    cloud: Cloud | None
    model: str | None


@dataclass(frozen=True)
class _Problem:
    """A refusal before any script step: status, extra headers, body."""

    code: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


_BEDROCK_PATH = re.compile(r"/model/([^/]+)/(converse|converse-stream)")
_AZURE_DEPLOYMENT_PATH = re.compile(r"/openai/deployments/([^/]+)/(.*)")
_VERTEX_PATH = re.compile(r"/(?:v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/(.*)")
_VERTEX_PUBLISHER = re.compile(r"publishers/([^/]+)/models/([^/:]+):(rawPredict|streamRawPredict)")
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


class _Event:
    """An SSE event or event-stream message; ``content`` marks a content delta (what
    ``after_chunks`` counts)."""

    __slots__ = ("content", "data")

    def __init__(self, data: bytes, content: bool = False) -> None:
        self.data = data
        self.content = content


# --------------------------------------------------------------------------------------------
# The server


class FakeProvider:
    """A fake LLM provider on ``127.0.0.1:<ephemeral port>``; see the module docstring.

    ``style`` fixes the shape of model listings and of routing/auth errors; ``None`` picks
    Anthropic's when the request carries ``anthropic-version`` or ``x-api-key``. Generation
    endpoints always answer in their own dialect (path ``…/messages`` → Anthropic).

    Cloud routes (see the module docstring): ``aws`` turns on SigV4 checking for Bedrock,
    ``vertex_token`` the bearer check for Vertex, ``azure_entra_token`` accepts that bearer
    token on the Azure routes (besides ``api_key``), and ``azure_deployments`` lists the
    deployments/models Azure knows (``None``: any)."""

    def __init__(self, *, api_key: str | None = None, models: Sequence[str] = ("fake-model",),
                 style: Dialect | None = None, default: Step | None = None,
                 aws: AwsCredentialsForFake | None = None, vertex_token: str | None = None,
                 azure_entra_token: str | None = None,
                 azure_deployments: Sequence[str] | None = None) -> None:
        self.api_key = api_key
        self.aws = aws
        self.vertex_token = vertex_token
        self.azure_entra_token = azure_entra_token
        self.azure_deployments = (frozenset(azure_deployments)
                                  if azure_deployments is not None else None)
        self.models: list[str] = list(models)
        self.style = style
        self.host = "127.0.0.1"
        self._default: Step = default if default is not None else Ok()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._script: deque[Step] = deque()
        self._by_model: dict[str, deque[Step]] = {}
        self._models_script: deque[Step] = deque()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._ids = itertools.count(1)
        self._conn_ids = itertools.count(1)
        self._connections_opened = 0
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._port = 0
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Bind and serve (idempotent). ``with FakeProvider() as fp`` calls it for you."""
        if self._closed:
            raise RuntimeError("FakeProvider was closed; make a new one")
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, args=(loop,),
                                        name="FakeProvider", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start_server(), loop).result(timeout=10)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop serving: abort every connection, stop the loop, join the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive() and not loop.is_closed():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                fut.result(timeout=10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _start_server(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, 0, backlog=1024, limit=_HEAD_LIMIT)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers.values()):
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        for _ in range(3):  # let the aborted transports run connection_lost and close sockets
            await asyncio.sleep(0)

    # ---- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("FakeProvider is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path; OpenAI clients want ``base_url + "/v1"``)."""
        return f"http://{self.host}:{self.port}"

    # ---- scripting -------------------------------------------------------------------------

    def script(self, *steps: Step) -> None:
        """Append steps to the shared script (used by any model without its own steps left)."""
        with self._lock:
            self._script.extend(steps)

    def script_for(self, model: str, *steps: Step) -> None:
        """Append steps for requests whose body names ``model`` (consulted first)."""
        with self._lock:
            self._by_model.setdefault(model, deque()).extend(steps)

    def script_models(self, *steps: Step) -> None:
        """Append steps for ``GET …/models`` (``ok()`` answers with the listing)."""
        with self._lock:
            self._models_script.extend(steps)

    def set_default(self, step: Step) -> None:
        """The step used when no script applies (initially ``ok()``)."""
        with self._lock:
            self._default = step

    def pending(self) -> int:
        """Scripted steps not yet consumed (all scripts)."""
        with self._lock:
            return (len(self._script) + len(self._models_script)
                    + sum(len(q) for q in self._by_model.values()))

    def clear(self) -> None:
        """Forget recorded requests, errors and every unconsumed step."""
        with self._lock:
            self._requests.clear()
            self._errors.clear()
            self._script.clear()
            self._by_model.clear()
            self._models_script.clear()

    def _next_step(self, endpoint: str, model: str | None) -> Step:
        with self._lock:
            if endpoint in ("models", "model"):
                return self._models_script.popleft() if self._models_script else Ok()
            if model is not None:
                queue = self._by_model.get(model)
                if queue:
                    return queue.popleft()
            if self._script:
                return self._script.popleft()
            return self._default

    # ---- recording -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions inside the server (bugs in the fake); should stay empty."""
        with self._lock:
            return list(self._errors)

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._connections_opened

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests arrived; return them. Raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"FakeProvider: {len(self._requests)} of {n} requests after {timeout}s")
                self._cond.wait(left)
            return list(self._requests)

    async def wait_for_requests_async(self, n: int,
                                      timeout: float = 5.0) -> list[RecordedRequest]:
        """``wait_for_requests`` for coroutines: polls without blocking the caller's loop."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self._requests) >= n:
                    return list(self._requests)
                got = len(self._requests)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"FakeProvider: {got} of {n} requests after {timeout}s")
            await asyncio.sleep(0.002)

    def _record(self, req: RecordedRequest) -> None:
        with self._cond:
            self._requests.append(req)
            self._cond.notify_all()

    # ---- connection handling ---------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        conn = next(self._conn_ids)
        if task is not None:
            self._tasks.add(task)
        self._writers[conn] = writer
        with self._lock:
            self._connections_opened += 1
        try:
            while await self._one_request(reader, writer, conn):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # close(): end quietly (3.11's start_server callback chokes on cancelled tasks)
        except Exception as exc:  # a bug in the fake: keep it for the test to see
            with self._lock:
                self._errors.append(exc)
        finally:
            self._writers.pop(conn, None)
            if task is not None:
                self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.transport.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           conn: int) -> bool:
        """Read and answer one request; False when the connection is done."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # the client closed (between requests, or mid-head)
        arrived = time.monotonic()
        lines = head.lstrip(b"\r\n")[:-4].decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self._write(writer, 400, [], b"bad request line", "text/plain", keep_alive=False)
            return False
        headers: dict[str, str] = {}
        header_list: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key, value = name.strip().lower(), value.strip()
            header_list.append((name.strip(), value))
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        else:
            length_text = headers.get("content-length") or "0"
            if not length_text.isdigit():
                self._write(writer, 400, [], b"bad content-length", "text/plain", False)
                return False
            length = int(length_text)
            body = await reader.readexactly(length) if length else b""
        connection = headers.get("connection", "").lower()
        keep_alive = ("keep-alive" in connection if version == "HTTP/1.0"
                      else "close" not in connection)

        path, _, query = target.partition("?")
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        route = self._route(path, headers, parsed)
        ex = _Exchange(method=method, path=path, headers=headers, body=body, json=parsed,
                       model=route.model, dialect=route.dialect, endpoint=route.endpoint,
                       keep_alive=keep_alive, request_id=f"req_fake_{next(self._ids):06d}",
                       cloud=route.cloud, arrived=arrived)

        step: Step | None = None
        problem = (self._auth_problem(ex, target, header_list)
                   or self._request_problem(ex, query))
        if problem is None:
            step = self._next_step(ex.endpoint, ex.model)
        self._record(RecordedRequest(
            method=method, path=path, target=target, headers=headers, body=body, json=parsed,
            time=arrived, connection=conn, model=ex.model, step=step, cloud=ex.cloud))
        if problem is not None:
            self._write(writer, problem.code, [*ex.cloud_headers, *problem.headers],
                        problem.body, _JSON, keep_alive, ex.request_id)
            await writer.drain()
            return keep_alive
        assert step is not None
        return await self._run(step, ex, writer)

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        return (headers.get("authorization") == f"Bearer {self.api_key}"
                or headers.get("x-api-key") == self.api_key)

    # ---- routing and refusals --------------------------------------------------------------

    def _route(self, path: str, headers: Mapping[str, str], parsed: Any) -> _Route:
        """Pick the endpoint, body format, cloud and script key from the path (and body)."""
        body_model = parsed.get("model") if isinstance(parsed, dict) else None
        body_model = body_model if isinstance(body_model, str) else None
        if match := _BEDROCK_PATH.fullmatch(path):
            return _Route("chat", "bedrock", "bedrock", urllib.parse.unquote(match.group(1)))
        if match := _AZURE_DEPLOYMENT_PATH.fullmatch(path):
            endpoint: Literal["chat", "other"] = (
                "chat" if match.group(2) == "chat/completions" else "other")
            return _Route(endpoint, "openai", "azure", urllib.parse.unquote(match.group(1)))
        if path == "/models/chat/completions":
            return _Route("chat", "openai", "azure_ai", body_model)
        if path == "/anthropic/v1/messages":
            return _Route("chat", "anthropic", "azure_ai", body_model)
        if match := _VERTEX_PATH.fullmatch(urllib.parse.unquote(path)):
            tail = match.group(3)
            if tail == "endpoints/openapi/chat/completions":
                return _Route("chat", "openai", "vertex", body_model)
            if publisher := _VERTEX_PUBLISHER.fullmatch(tail):
                wire: Wire = "anthropic" if publisher.group(1) == "anthropic" else "openai"
                return _Route("chat", wire, "vertex", publisher.group(2))
            return _Route("other", "openai", "vertex", None)
        if path.endswith("/chat/completions"):
            return _Route("chat", "openai", None, body_model)
        if path.endswith("/messages"):
            return _Route("chat", "anthropic", None, body_model)
        dialect: Dialect = self.style or ("anthropic" if "anthropic-version" in headers
                                          or "x-api-key" in headers else "openai")
        return _Route("models" if path.endswith("/models")
                      else "model" if "/models/" in path else "other", dialect, None, body_model)

    def _auth_problem(self, ex: _Exchange, target: str,
                      header_list: Sequence[tuple[str, str]]) -> _Problem | None:
        """The route's own cloud auth (``None``: accepted or not configured)."""
        if ex.cloud == "bedrock":
            if self.aws is None:
                return None
            refusal = verify_sigv4(self.aws, ex.method, target, header_list, ex.body)
            if refusal is None:
                return None
            headers, body = aws_error(refusal.status, refusal.message, refusal.error_type)
            return _Problem(refusal.status, body, tuple(headers))
        if ex.cloud in ("azure", "azure_ai"):
            return self._azure_auth_problem(ex)
        if ex.cloud == "vertex":
            if self.vertex_token is None:
                return None
            given = ex.headers.get("authorization")
            if given is None:
                return _Problem(401, google_error(401, GOOGLE_CREDENTIALS_MISSING,
                                                  reason="CREDENTIALS_MISSING"))
            if not _same(given, f"Bearer {self.vertex_token}"):
                return _Problem(401, google_error(401))
            return None
        if self.api_key is not None and not self._authorized(ex.headers):
            message = ("invalid x-api-key" if ex.chat_dialect == "anthropic"
                       else "Incorrect API key provided")
            return _Problem(401, _dumps(_error_obj(ex.chat_dialect, 401, message)))
        return None

    def _azure_auth_problem(self, ex: _Exchange) -> _Problem | None:
        """Azure: ``api-key`` (plus ``x-api-key`` on ``/anthropic`` and a bearer key on the
        Foundry routes) or the Entra bearer token."""
        if self.api_key is None and self.azure_entra_token is None:
            return None
        bearer = ex.headers.get("authorization")
        if self.api_key is not None:
            keys = [ex.headers.get("api-key")]
            if ex.cloud == "azure_ai":
                keys.append(bearer.removeprefix("Bearer ") if bearer else None)
                if ex.dialect == "anthropic":
                    keys.append(ex.headers.get("x-api-key"))
            if any(k is not None and _same(k, self.api_key) for k in keys):
                return None
        if (self.azure_entra_token is not None and bearer is not None
                and _same(bearer, f"Bearer {self.azure_entra_token}")):
            return None
        message = AZURE_TOKEN_DENIED if bearer and "api-key" not in ex.headers \
            else AZURE_KEY_DENIED
        return _Problem(401, azure_error("401", message))

    def _request_problem(self, ex: _Exchange, query: str) -> _Problem | None:
        """Routing, method, body and cloud-specific request checks (after auth)."""
        if ex.endpoint == "other":
            return self._gateway_error(ex, 404, f"no route for {ex.method} {ex.path}")
        if (ex.endpoint == "chat") != (ex.method == "POST"):
            return self._gateway_error(ex, 405, f"method {ex.method} not allowed on {ex.path}")
        if ex.endpoint == "chat" and not isinstance(ex.json, dict):
            return self._gateway_error(ex, 400, "request body is not a JSON object")
        versions = urllib.parse.parse_qs(query).get("api-version", [])
        version_ok = bool(versions) and _API_VERSION.fullmatch(versions[0]) is not None
        known = self.azure_deployments
        if ex.cloud == "azure":
            if not version_ok:
                return _Problem(404, azure_error("404", "Resource not found"))
            if known is not None and ex.model not in known:
                return _Problem(404, azure_error("DeploymentNotFound",
                                                 AZURE_DEPLOYMENT_NOT_FOUND))
        if ex.cloud == "azure_ai" and ex.dialect == "openai":
            if not versions:
                return _Problem(400, azure_error(
                    "BadRequest", "Missing required query parameter: api-version"))
            if ex.model is None:
                message = ("No model specified in request. Please provide a model name in the "
                           "request body or as a x-ms-model-mesh-model-name header.")
                return _Problem(400, azure_error("no_model_name", message, details=message))
            if known is not None and ex.model not in known:
                message = f"Unknown model: {ex.model}"
                return _Problem(404, azure_error("unknown_model", message, details=message))
        if ex.cloud == "vertex" and ex.dialect == "anthropic":
            return self._vertex_anthropic_problem(ex)
        return None

    @staticmethod
    def _vertex_anthropic_problem(ex: _Exchange) -> _Problem | None:
        """Claude on Vertex: ``anthropic_version`` in the body, the model only in the path."""
        assert isinstance(ex.json, dict)
        if "model" in ex.json:
            message = "model: Extra inputs are not permitted"
        elif ex.json.get("anthropic_version") != VERTEX_ANTHROPIC_VERSION:
            message = f"anthropic_version: Input should be '{VERTEX_ANTHROPIC_VERSION}'"
        else:
            return None
        return _Problem(400, _dumps(_error_obj("anthropic", 400, message)))

    def _gateway_error(self, ex: _Exchange, code: int, message: str) -> _Problem:
        """A routing/request refusal in the cloud's own error shape."""
        if ex.cloud == "bedrock":
            kind = "UnknownOperationException" if code in (404, 405) else None
            headers, body = aws_error(code, message, kind)
            return _Problem(code, body, tuple(headers))
        if ex.cloud in ("azure", "azure_ai") and code == 404:
            return _Problem(code, azure_error("404", "Resource not found"))
        if ex.cloud == "vertex":
            return _Problem(code, google_error(code, message))
        return _Problem(code, _dumps(_error_obj(ex.chat_dialect, code, message)))

    def _status_reply(self, ex: _Exchange, step: Status) -> tuple[list[tuple[str, str]], bytes]:
        """Headers and body of a scripted error status in the route's dialect."""
        headers = list(step.headers)
        if ex.cloud == "bedrock":
            aws_headers, body = aws_error(step.code, step.message)
            named = {k.lower() for k, _ in headers}
            headers = [h for h in aws_headers if h[0].lower() not in named] + headers
        elif ex.cloud in ("azure", "azure_ai") and ex.dialect == "openai" \
                and step.code in (401, 404, 429):
            body = azure_error(str(step.code), step.message or _azure_message(step))
        elif ex.cloud == "vertex" and not (ex.dialect == "anthropic" and step.code == 529):
            body = google_error(step.code, step.message)
        else:
            body = _dumps(_error_obj(ex.chat_dialect, step.code, step.message))
        return headers, (step.body if step.body is not None else body)

    # ---- responding ------------------------------------------------------------------------

    @staticmethod
    def _write(writer: asyncio.StreamWriter, code: int, headers: Iterable[tuple[str, str]],
               body: bytes, content_type: str, keep_alive: bool, request_id: str = "") -> None:
        lines = [f"HTTP/1.1 {code} {_reason(code)}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}",
                 f"Connection: {'keep-alive' if keep_alive else 'close'}"]
        if request_id:
            lines.append(f"x-request-id: {request_id}")
        lines.extend(f"{k}: {v}" for k, v in headers)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    async def _run(self, step: Step, ex: _Exchange, writer: asyncio.StreamWriter) -> bool:
        """Perform ``step``; True when the connection can serve another request."""
        keep = ex.keep_alive
        if isinstance(step, Delay):
            await asyncio.sleep(step.seconds)
            if writer.transport.is_closing():
                return False
            return await self._run(step.then, ex, writer)
        if isinstance(step, Reset):
            self._abort(writer, rst=step.rst)
            return False
        if isinstance(step, Raw):
            await self._raw(step, writer)
            return False
        if isinstance(step, Status):
            headers, body = self._status_reply(ex, step)
            self._write(writer, step.code, [*ex.cloud_headers, *headers], body,
                        step.content_type, keep, ex.request_id)
        elif isinstance(step, Malformed):
            return await self._malformed(step, ex, writer)
        elif isinstance(step, StreamError):
            if not (ex.endpoint == "chat" and ex.wants_stream):
                return await self._run(Status(step.code, message=step.message), ex, writer)
            events = self._events(ex, Ok(text=_long_text(step.after_chunks)))
            cut = _cut(events, step.after_chunks)
            cut.append(self._stream_error_event(ex, step))
            return await self._stream(writer, ex, cut, chunked=True, chunk_delay=0.0)
        elif isinstance(step, StreamDrop):
            if ex.endpoint == "chat" and ex.wants_stream:
                events = self._events(ex, Ok(text=step.text or _long_text(step.after_chunks)))
                await self._stream(writer, ex, _cut(events, step.after_chunks), chunked=True,
                                   chunk_delay=step.chunk_delay, finish=False)
            else:
                body = self._full_body(ex, Ok(text=step.text or DEFAULT_TEXT))
                head = self._head_bytes(200, len(body), ex)
                writer.write(head + body[: len(body) // 2])
            await self._flush(writer)
            self._abort(writer, rst=step.rst)
            return False
        elif isinstance(step, Ok):
            if ex.endpoint == "chat" and (step.stream if step.stream is not None
                                          else ex.wants_stream):
                return await self._stream(writer, ex, self._events(ex, step),
                                          chunked=step.chunked, chunk_delay=step.chunk_delay,
                                          extra=step.headers)
            self._write(writer, 200, [*ex.cloud_headers, *step.headers],
                        self._full_body(ex, step), _JSON, keep, ex.request_id)
        else:  # pragma: no cover - exhaustive
            raise TypeError(f"not a script step: {step!r}")
        await writer.drain()
        return keep

    @staticmethod
    def _stream_error_event(ex: _Exchange, step: StreamError) -> _Event:
        """The in-stream error: an event-stream exception (Bedrock) or an SSE error event."""
        if ex.dialect == "bedrock":
            kind = aws_stream_exception_type(step.code)
            message = step.message or f"fake provider: {step.code} {_reason(step.code)}"
            payload: dict[str, Any] = {"message": message}
            if kind == "modelStreamErrorException":
                payload.update(originalStatusCode=step.code, originalMessage=message)
            return _Event(bedrock_exception(kind, payload))
        err = _error_obj(ex.chat_dialect, step.code, step.message)
        return _Event(_sse(err, "error" if ex.dialect == "anthropic" else None))

    async def _raw(self, step: Raw, writer: asyncio.StreamWriter) -> None:
        lines = [f"HTTP/1.1 {step.code} {_reason(step.code)}", "Connection: close"]
        if step.content_type is not None:
            lines.append(f"Content-Type: {step.content_type}")
        if step.framing == "length":
            size = len(step.body) * (step.repeat or 0)
            lines.append(f"Content-Length: {step.length if step.length is not None else size}")
        elif step.framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
        lines.extend(f"{k}: {v}" for k, v in step.headers)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        piece = (_chunk_frame(step.body) if step.framing == "chunked" and step.body
                 else step.body)
        sent = 0
        while piece and (step.repeat is None or sent < step.repeat):
            writer.write(piece)
            await writer.drain()  # raises once the client has gone away
            if writer.transport.is_closing():
                return
            sent += 1
        if step.framing == "chunked":
            writer.write(b"0\r\n\r\n")
        await self._flush(writer)
        writer.close()

    def _head_bytes(self, code: int, length: int, ex: _Exchange) -> bytes:
        return (f"HTTP/1.1 {code} {_reason(code)}\r\nContent-Type: {_JSON}\r\n"
                f"Content-Length: {length}\r\nx-request-id: {ex.request_id}\r\n\r\n"
                ).encode("latin-1")

    async def _malformed(self, step: Malformed, ex: _Exchange,
                         writer: asyncio.StreamWriter) -> bool:
        if ex.endpoint == "chat" and ex.wants_stream and step.kind != "empty":
            if ex.dialect == "bedrock":
                frame = (encode_event_message(
                    [(":event-type", "contentBlockDelta"), (":content-type", _JSON),
                     (":message-type", "event")], b"this is not json {")
                    if step.kind == "not_json"
                    else bedrock_event("contentBlockDelta",
                                       {"contentBlockIndex": "zero", "delta": "nope"}))
                return await self._stream(writer, ex, [_Event(frame)], chunked=True,
                                          chunk_delay=0.0)
            if step.kind == "not_json":
                data = _sse(b"this is not json {")
            elif ex.dialect == "anthropic":
                data = _sse({"type": "message_start", "message": "nope"}, "message_start")
            else:
                data = _sse({"object": "chat.completion.chunk", "choices": "nope"})
            events = [_Event(data)]
            if ex.dialect == "openai":
                events.append(_Event(_sse(b"[DONE]")))
            return await self._stream(writer, ex, events, chunked=True, chunk_delay=0.0)
        if step.kind == "not_json":
            body = b"<html><body>502 Bad Gateway</body></html>"
        elif step.kind == "empty":
            body = b""
        elif ex.endpoint != "chat":
            body = _dumps({"object": "list", "data": "nope"})
        elif ex.dialect == "bedrock":
            body = _dumps({"output": "nope", "stopReason": 7, "usage": []})
        elif ex.dialect == "anthropic":
            body = _dumps({"type": "message", "content": "nope", "usage": []})
        else:
            body = _dumps({"object": "chat.completion", "choices": "nope"})
        self._write(writer, 200, ex.cloud_headers, body, _JSON, ex.keep_alive, ex.request_id)
        await writer.drain()
        return ex.keep_alive

    async def _stream(self, writer: asyncio.StreamWriter, ex: _Exchange, events: list[_Event],
                      *, chunked: bool, chunk_delay: float, finish: bool = True,
                      extra: Iterable[tuple[str, str]] = ()) -> bool:
        keep = ex.keep_alive and chunked
        lines = ["HTTP/1.1 200 OK", f"Content-Type: {ex.stream_content_type}",
                 "Cache-Control: no-cache", f"x-request-id: {ex.request_id}",
                 f"Connection: {'keep-alive' if keep else 'close'}"]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        lines.extend(f"{k}: {v}" for k, v in [*ex.cloud_headers, *extra])
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        frame = _chunk_frame if chunked else _identity
        if chunk_delay <= 0:
            writer.write(b"".join(frame(e.data) for e in events))
        else:
            for i, event in enumerate(events):
                if i:
                    await writer.drain()
                    await asyncio.sleep(chunk_delay)
                if writer.transport.is_closing():
                    return False
                writer.write(frame(event.data))
        if not finish:
            return False
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        if not keep:
            writer.close()
        return keep

    @staticmethod
    async def _flush(writer: asyncio.StreamWriter) -> None:
        """Wait until the transport handed everything to the kernel (abort() discards)."""
        await writer.drain()
        for _ in range(500):
            if writer.transport.is_closing() or writer.transport.get_write_buffer_size() == 0:
                return
            await asyncio.sleep(0.001)

    @staticmethod
    def _abort(writer: asyncio.StreamWriter, *, rst: bool) -> None:
        if rst:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    # ---- bodies ----------------------------------------------------------------------------

    def _usage(self, ex: _Exchange, step: Ok) -> tuple[int, int] | None:
        if step.usage is None:
            return None
        if step.usage == "auto":
            args = sum(len(_dumps(dict(t.arguments))) for t in step.tool_calls)
            return max(1, len(ex.body) // 4), max(1, (len(step.text) + args) // 4)
        return step.usage

    def _tool_id(self, dialect: Wire, call: ToolCall) -> str:
        if call.id is not None:
            return call.id
        prefix = {"anthropic": "toolu", "bedrock": "tooluse"}.get(dialect, "call")
        return f"{prefix}_fake{next(self._ids):06d}"

    def _bedrock_tools(self, step: Ok) -> list[tuple[BedrockToolUse, list[str]]]:
        """Each tool call with its id and its input JSON in stream pieces."""
        return [(BedrockToolUse(self._tool_id("bedrock", t), t.name, dict(t.arguments)),
                 _split_json(json.dumps(dict(t.arguments)))) for t in step.tool_calls]

    @staticmethod
    def _latency_ms(ex: _Exchange) -> int:
        return max(1, int((time.monotonic() - ex.arrived) * 1000))

    def _full_body(self, ex: _Exchange, step: Ok) -> bytes:
        if ex.endpoint == "models":
            return _dumps(self._listing(ex.chat_dialect))
        if ex.endpoint == "model":
            wanted = ex.path.rsplit("/", 1)[-1]
            return _dumps(self._model_obj(ex.chat_dialect, wanted))
        model = step.model or ex.model or "unknown"
        usage = self._usage(ex, step)
        if ex.dialect == "bedrock":
            return bedrock_converse_body(
                step.text, [tool for tool, _ in self._bedrock_tools(step)],
                bedrock_stop_reason(step.finish_reason, bool(step.tool_calls)), usage,
                step.cached, self._latency_ms(ex))
        if ex.dialect == "anthropic":
            content: list[dict[str, Any]] = []
            if step.text or not step.tool_calls:
                content.append({"type": "text", "text": step.text})
            content.extend({"type": "tool_use", "id": self._tool_id("anthropic", t),
                            "name": t.name, "input": dict(t.arguments)}
                           for t in step.tool_calls)
            msg: dict[str, Any] = {
                "id": f"msg_fake{next(self._ids):06d}", "type": "message", "role": "assistant",
                "model": model, "content": content,
                "stop_reason": _anthropic_stop(step.finish_reason, bool(step.tool_calls)),
                "stop_sequence": None}
            if usage is not None:
                msg["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1],
                                "cache_read_input_tokens": step.cached,
                                "cache_creation_input_tokens": 0}
            return _dumps(msg)
        message: dict[str, Any] = {"role": "assistant",
                                   "content": step.text if step.text or not step.tool_calls
                                   else None}
        if step.tool_calls:
            message["tool_calls"] = [
                {"id": self._tool_id("openai", t), "type": "function",
                 "function": {"name": t.name, "arguments": json.dumps(dict(t.arguments))}}
                for t in step.tool_calls]
        finish = step.finish_reason or ("tool_calls" if step.tool_calls else "stop")
        completion: dict[str, Any] = {
            "id": f"chatcmpl-fake{next(self._ids):06d}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}]}
        if usage is not None:
            completion["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                   "total_tokens": usage[0] + usage[1],
                                   "prompt_tokens_details": {"cached_tokens": step.cached}}
        if ex.cloud == "azure":
            completion["prompt_filter_results"] = azure_prompt_filter_results()
            completion["choices"][0]["content_filter_results"] = azure_filter_results()
        return _dumps(completion)

    def _listing(self, dialect: Dialect) -> dict[str, Any]:
        data = [self._model_obj(dialect, m) for m in self.models]
        if dialect == "anthropic":
            return {"data": data, "has_more": False,
                    "first_id": self.models[0] if self.models else None,
                    "last_id": self.models[-1] if self.models else None}
        return {"object": "list", "data": data}

    @staticmethod
    def _model_obj(dialect: Dialect, model: str) -> dict[str, Any]:
        if dialect == "anthropic":
            return {"type": "model", "id": model, "display_name": model,
                    "created_at": "2025-01-01T00:00:00Z"}
        return {"id": model, "object": "model", "created": 1735689600, "owned_by": "fake"}

    def _events(self, ex: _Exchange, step: Ok) -> list[_Event]:
        if ex.dialect == "anthropic":
            return self._anthropic_events(ex, step)
        if ex.dialect == "bedrock":
            frames = bedrock_stream_events(
                _split_text(step.text, step.chunks), self._bedrock_tools(step),
                bedrock_stop_reason(step.finish_reason, bool(step.tool_calls)),
                self._usage(ex, step), step.cached, self._latency_ms(ex))
            return [_Event(frame, content) for frame, content in frames]
        return self._openai_events(ex, step)

    def _openai_events(self, ex: _Exchange, step: Ok) -> list[_Event]:
        cid = f"chatcmpl-fake{next(self._ids):06d}"
        created = int(time.time())
        model = step.model or ex.model or "unknown"
        include_usage = ex.include_usage
        usage = self._usage(ex, step)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            obj: dict[str, Any] = {
                "id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}
            if include_usage:
                obj["usage"] = None
            return _sse(obj)

        events = [_Event(chunk({"role": "assistant", "content": ""}))]
        if ex.cloud == "azure":  # Azure opens with a choice-less prompt-filter chunk
            events.insert(0, _Event(_sse({
                "choices": [], "created": 0, "id": "", "model": "", "object": "",
                "prompt_filter_results": azure_prompt_filter_results()})))
        events.extend(_Event(chunk({"content": piece}), content=True)
                      for piece in _split_text(step.text, step.chunks))
        for i, call in enumerate(step.tool_calls):
            events.append(_Event(chunk({"tool_calls": [
                {"index": i, "id": self._tool_id("openai", call), "type": "function",
                 "function": {"name": call.name, "arguments": ""}}]})))
            events.extend(
                _Event(chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}),
                       content=True)
                for part in _split_json(json.dumps(dict(call.arguments))))
        finish = step.finish_reason or ("tool_calls" if step.tool_calls else "stop")
        events.append(_Event(chunk({}, finish)))
        if include_usage and usage is not None:
            events.append(_Event(_sse({
                "id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "system_fingerprint": None, "choices": [],
                "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                          "total_tokens": usage[0] + usage[1],
                          "prompt_tokens_details": {"cached_tokens": step.cached}}})))
        events.append(_Event(_sse(b"[DONE]")))
        return events

    def _anthropic_events(self, ex: _Exchange, step: Ok) -> list[_Event]:
        model = step.model or ex.model or "unknown"
        usage = self._usage(ex, step)
        message: dict[str, Any] = {
            "id": f"msg_fake{next(self._ids):06d}", "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": None, "stop_sequence": None}
        if usage is not None:
            message["usage"] = {"input_tokens": usage[0], "output_tokens": 1,
                                "cache_read_input_tokens": step.cached,
                                "cache_creation_input_tokens": 0}
        events = [_Event(_sse({"type": "message_start", "message": message}, "message_start")),
                  _Event(_sse({"type": "ping"}, "ping"))]
        index = 0
        if step.text or not step.tool_calls:
            events.append(_Event(_sse({"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}},
                                      "content_block_start")))
            events.extend(
                _Event(_sse({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": piece}},
                            "content_block_delta"), content=True)
                for piece in _split_text(step.text, step.chunks))
            events.append(_Event(_sse({"type": "content_block_stop", "index": 0},
                                      "content_block_stop")))
            index = 1
        for call in step.tool_calls:
            events.append(_Event(_sse(
                {"type": "content_block_start", "index": index,
                 "content_block": {"type": "tool_use", "id": self._tool_id("anthropic", call),
                                   "name": call.name, "input": {}}},
                "content_block_start")))
            events.extend(
                _Event(_sse({"type": "content_block_delta", "index": index,
                             "delta": {"type": "input_json_delta", "partial_json": part}},
                            "content_block_delta"), content=True)
                for part in _split_json(json.dumps(dict(call.arguments))))
            events.append(_Event(_sse({"type": "content_block_stop", "index": index},
                                      "content_block_stop")))
            index += 1
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": _anthropic_stop(step.finish_reason, bool(step.tool_calls)),
                      "stop_sequence": None}}
        if usage is not None:
            delta["usage"] = {"output_tokens": usage[1]}
        events.append(_Event(_sse(delta, "message_delta")))
        events.append(_Event(_sse({"type": "message_stop"}, "message_stop")))
        return events


def _long_text(after_chunks: int) -> str:
    """A text with comfortably more words (= default chunks) than ``after_chunks``."""
    return " ".join(f"word{i}" for i in range(max(after_chunks, 0) + 4))


def _cut(events: list[_Event], after_chunks: int) -> list[_Event]:
    """The events before the ``after_chunks + 1``-th content delta; when there are fewer
    deltas, the events up to the last one (so the stream never reaches its finish)."""
    content = [i for i, event in enumerate(events) if event.content]
    if after_chunks < len(content):
        return events[: content[after_chunks]]
    return events[: content[-1] + 1] if content else events[:1]


def _identity(data: bytes) -> bytes:
    return data
