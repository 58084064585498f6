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

Usage numbers in ``ok(usage=(P, C), cached=K)`` are written verbatim into the dialect's fields:
``prompt_tokens``/``completion_tokens``/``prompt_tokens_details.cached_tokens`` (OpenAI) and
``input_tokens``/``output_tokens``/``cache_read_input_tokens`` (Anthropic). (Real OpenAI counts
cached tokens inside ``prompt_tokens``; real Anthropic leaves them out of ``input_tokens`` —
scripts choose P accordingly.)

    with FakeProvider(api_key="sk-test") as fp:
        fp.script(status(429, headers={"Retry-After": "2"}), ok(text="hello"))
        ... point the client at fp.base_url + "/v1" ...
        assert len(fp.wait_for_requests(2)) == 2
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, TypeAlias

Dialect = Literal["openai", "anthropic"]
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
    model: str | None
    step: Step | None  # the scripted step that answered it (None: auth/routing error)

    @property
    def stream(self) -> bool:
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
    dialect: Dialect
    endpoint: Literal["chat", "models", "model", "other"]
    keep_alive: bool
    request_id: str

    @property
    def wants_stream(self) -> bool:
        return isinstance(self.json, dict) and self.json.get("stream") is True

    @property
    def include_usage(self) -> bool:
        opts = self.json.get("stream_options") if isinstance(self.json, dict) else None
        return isinstance(opts, dict) and opts.get("include_usage") is True


class _Event:
    """An SSE event; ``content`` marks a content delta (what ``after_chunks`` counts)."""

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
    endpoints always answer in their own dialect (path ``…/messages`` → Anthropic)."""

    def __init__(self, *, api_key: str | None = None, models: Sequence[str] = ("fake-model",),
                 style: Dialect | None = None, default: Step | None = None) -> None:
        self.api_key = api_key
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
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key, value = name.strip().lower(), value.strip()
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

        path = target.split("?", 1)[0]
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        model = parsed.get("model") if isinstance(parsed, dict) else None
        model = model if isinstance(model, str) else None
        endpoint: Literal["chat", "models", "model", "other"]
        dialect: Dialect
        if path.endswith("/chat/completions"):
            endpoint, dialect = "chat", "openai"
        elif path.endswith("/messages"):
            endpoint, dialect = "chat", "anthropic"
        else:
            endpoint = ("models" if path.endswith("/models")
                        else "model" if "/models/" in path else "other")
            dialect = self.style or ("anthropic" if "anthropic-version" in headers
                                     or "x-api-key" in headers else "openai")
        ex = _Exchange(method=method, path=path, headers=headers, body=body, json=parsed,
                       model=model, dialect=dialect, endpoint=endpoint, keep_alive=keep_alive,
                       request_id=f"req_fake_{next(self._ids):06d}")

        step: Step | None = None
        problem: tuple[int, str] | None = None
        if self.api_key is not None and not self._authorized(headers):
            problem = (401, "invalid x-api-key" if dialect == "anthropic"
                       else "Incorrect API key provided")
        elif endpoint == "other":
            problem = (404, f"no route for {method} {path}")
        elif (endpoint == "chat") != (method == "POST"):
            problem = (405, f"method {method} not allowed on {path}")
        elif endpoint == "chat" and not isinstance(parsed, dict):
            problem = (400, "request body is not a JSON object")
        else:
            step = self._next_step(endpoint, model)
        self._record(RecordedRequest(
            method=method, path=path, target=target, headers=headers, body=body, json=parsed,
            time=arrived, connection=conn, model=model, step=step))
        if step is None:
            assert problem is not None
            code, message = problem
            self._write(writer, code, [], _dumps(_error_obj(dialect, code, message)), _JSON,
                        keep_alive, ex.request_id)
            await writer.drain()
            return keep_alive
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
            body = (step.body if step.body is not None
                    else _dumps(_error_obj(ex.dialect, step.code, step.message)))
            self._write(writer, step.code, step.headers, body, step.content_type, keep,
                        ex.request_id)
        elif isinstance(step, Malformed):
            return await self._malformed(step, ex, writer)
        elif isinstance(step, StreamError):
            if not (ex.endpoint == "chat" and ex.wants_stream):
                return await self._run(Status(step.code, message=step.message), ex, writer)
            events = self._events(ex, Ok(text=_long_text(step.after_chunks)))
            cut = _cut(events, step.after_chunks)
            err = _error_obj(ex.dialect, step.code, step.message)
            cut.append(_Event(_sse(err, "error" if ex.dialect == "anthropic" else None)))
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
            self._write(writer, 200, step.headers, self._full_body(ex, step), _JSON, keep,
                        ex.request_id)
        else:  # pragma: no cover - exhaustive
            raise TypeError(f"not a script step: {step!r}")
        await writer.drain()
        return keep

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
        elif ex.dialect == "anthropic":
            body = _dumps({"type": "message", "content": "nope", "usage": []})
        else:
            body = _dumps({"object": "chat.completion", "choices": "nope"})
        self._write(writer, 200, [], body, _JSON, ex.keep_alive, ex.request_id)
        await writer.drain()
        return ex.keep_alive

    async def _stream(self, writer: asyncio.StreamWriter, ex: _Exchange, events: list[_Event],
                      *, chunked: bool, chunk_delay: float, finish: bool = True,
                      extra: Iterable[tuple[str, str]] = ()) -> bool:
        keep = ex.keep_alive and chunked
        lines = ["HTTP/1.1 200 OK", f"Content-Type: {_SSE}", "Cache-Control: no-cache",
                 f"x-request-id: {ex.request_id}",
                 f"Connection: {'keep-alive' if keep else 'close'}"]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        lines.extend(f"{k}: {v}" for k, v in extra)
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

    def _tool_id(self, dialect: Dialect, call: ToolCall) -> str:
        if call.id is not None:
            return call.id
        return f"{'toolu' if dialect == 'anthropic' else 'call'}_fake{next(self._ids):06d}"

    def _full_body(self, ex: _Exchange, step: Ok) -> bytes:
        if ex.endpoint == "models":
            return _dumps(self._listing(ex.dialect))
        if ex.endpoint == "model":
            wanted = ex.path.rsplit("/", 1)[-1]
            return _dumps(self._model_obj(ex.dialect, wanted))
        model = step.model or ex.model or "unknown"
        usage = self._usage(ex, step)
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
