"""A lean HTTP/1.1 transport for httpx: keep-alive connections over asyncio streams, pooled per
origin.

httpx's default transport (httpcore over anyio) cost 0.84–0.97 ms of CPU per call to a loopback
provider on our 2-core box, and httpx's client around it another ~0.4 ms: the largest single
share of what the service spends per request (benchmarks/README.md, "Service under load"). A
provider call is one request shape — a POST (or a GET for a model listing) with a body we have
in memory, answered with a JSON body or a server-sent-event stream — so this transport does just
that, at ~0.2 ms:

- one connection per request at a time, kept alive and reused (most recently used first) while
  idle for less than `keepalive_expiry` seconds and not closed by the server;
- at most `max_connections` requests in flight (connections in use) across all origins; a
  request waits for a free slot up to the pool timeout; idle connections hold no slot and are
  closed once they expire;
- response bodies framed by `Content-Length`, chunked transfer coding or the connection's close,
  read piecewise (never more than `READ_BYTES` at once, whatever a length or chunk size says),
  so the caller's size bounds apply as the body arrives; `Content-Encoding` is decoded by httpx;
- every size the server controls is bounded: the status line and headers to `max_head_bytes`,
  a chunk-size line likewise;
- failures raised as httpx's own exception types (`ConnectError`, `ConnectTimeout`,
  `ReadTimeout`, `WriteTimeout`, `ReadError`, `WriteError`, `RemoteProtocolError`,
  `PoolTimeout`, `LocalProtocolError`), so callers map them exactly as before;
- header names and values with CR, LF or NUL are refused (`LocalProtocolError`), never sent.

Not supported, by design: proxies (`RouterConfig.trust_env=True` keeps httpx's own transport,
which honours `HTTP(S)_PROXY`), HTTP/2, `Expect: 100-continue` (1xx interim answers are skipped),
streamed request bodies are read into memory first.
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

READ_BYTES = 64 * 1024  # the most one read asks for
_CHUNK_LINE_FAST = 64  # a chunk size line longer than this (extensions) is read step by step
# A chunk's size line as the fast path takes it (`_Conn.whole_chunks`): hex digits, an optional
# extension, CRLF; any other line (spaces, a bare LF) is left to the step-by-step reader.
_CHUNK_HEAD = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?\r\n")
_LAST_CHUNK = b"0\r\n\r\n"
WRITE_HIGH_WATER = 64 * 1024  # asyncio's default: past it a transport pauses its writer
MAX_HEAD_BYTES = 64 * 1024  # a response's status line and headers, and a chunk-size line
DEFAULT_KEEPALIVE_S = 5.0
_FORBIDDEN = frozenset(b"\r\n\x00")
OriginKey = tuple[str, str, int]


class Http1Transport(httpx.AsyncBaseTransport):
    def __init__(self, *, ssl_context: ssl.SSLContext, max_connections: int = 100,
                 keepalive_expiry: float = DEFAULT_KEEPALIVE_S,
                 max_head_bytes: int = MAX_HEAD_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ssl = ssl_context
        self._max = max(1, max_connections)
        self._expiry = keepalive_expiry
        self._max_head = max_head_bytes
        self._clock = clock
        self._origins: dict[OriginKey, _Origin] = {}
        self._slots = asyncio.Semaphore(self._max)
        self._closed = False
        self._next_sweep = clock() + keepalive_expiry

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}",
                                            request=request)
        port = url.port or (443 if scheme == "https" else 80)
        key = (scheme, url.host, port)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(key)
        timeout = request.extensions.get("timeout", {})
        head = _request_head(request)
        body = await request.aread()
        conn = await self._acquire(origin, request, timeout)
        try:
            await conn.send(head + body if len(body) < READ_BYTES else head, request,
                            timeout.get("write"))
            if len(body) >= READ_BYTES:
                await conn.send(body, request, timeout.get("write"))
            clock = ReadClock(timeout.get("read"))
            try:
                status, reason, headers, keep = await conn.read_head(request, clock)
                framing, length = _framing(request, status, headers)
            except BaseException:
                clock.close()
                raise
        except BaseException:
            self._release(origin, conn, reusable=False)
            raise
        stream = _Body(self, origin, conn, request, framing, length, keep, clock)
        return httpx.Response(status, headers=headers, stream=stream,
                              extensions={"http_version": b"HTTP/1.1",
                                          "reason_phrase": reason})

    async def _acquire(self, origin: _Origin, request: httpx.Request,
                       timeout: dict[str, float | None]) -> _Conn:
        if self._slots.locked():  # wait for a slot, up to the pool timeout
            try:
                async with asyncio.timeout(timeout.get("pool")):
                    await self._slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no connection became free in time",
                                        request=request) from None
        else:  # a free slot is taken at once (a timeout's timer costs ~5 µs)
            await self._slots.acquire()
        try:
            now = self._clock()
            while origin.idle:
                conn = origin.idle.pop()
                if now - conn.idle_since < self._expiry and conn.usable():
                    return conn
                conn.close()
            return await _Conn.open(origin.key, self._ssl, self._max_head, request,
                                    timeout.get("connect"))
        except BaseException:
            self._slots.release()
            raise

    def _release(self, origin: _Origin, conn: _Conn, reusable: bool) -> None:
        now = self._clock()
        if reusable and not self._closed and conn.usable():
            conn.idle_since = now
            origin.idle.append(conn)
        else:
            conn.close()
        self._slots.release()
        if now >= self._next_sweep:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Close expired idle connections of every origin (an origin no longer called would
        keep its sockets open otherwise); at most once per `keepalive_expiry`."""
        self._next_sweep = now + self._expiry
        for origin in self._origins.values():
            fresh: collections.deque[_Conn] = collections.deque()
            for c in origin.idle:
                if now - c.idle_since < self._expiry and c.usable():
                    fresh.append(c)
                else:
                    c.close()
            origin.idle = fresh

    async def aclose(self) -> None:
        self._closed = True
        for origin in self._origins.values():
            while origin.idle:
                origin.idle.pop().close()
        self._origins.clear()


@dataclass
class _Origin:
    key: OriginKey
    idle: collections.deque[_Conn] = field(default_factory=collections.deque)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    @staticmethod
    async def open(key: OriginKey, context: ssl.SSLContext, max_head: int,
                   request: httpx.Request, timeout_s: float | None) -> _Conn:
        scheme, host, port = key
        tls = context if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=max_head)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out",
                                       request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"connecting to {host}:{port} failed: "
                                     f"{type(exc).__name__}", request=request) from None
        return _Conn(reader, writer)

    def usable(self) -> bool:
        """Open, and nothing unread: a server that closed an idle connection (or sent bytes
        nobody asked for) makes it unusable."""
        return (not self.writer.is_closing() and not self.reader.at_eof()
                and not self.buffered())

    def close(self) -> None:
        self.writer.close()

    async def send(self, data: bytes, request: httpx.Request, timeout_s: float | None) -> None:
        """Write `data`; wait (up to the write timeout) only when the socket's buffer is past
        its high-water mark, which is when `drain` would block."""
        try:
            self.writer.write(data)
            if self.writer.transport.get_write_buffer_size() < WRITE_HIGH_WATER:
                return
            async with asyncio.timeout(timeout_s):
                await self.writer.drain()
        except TimeoutError:
            raise httpx.WriteTimeout("sending the request timed out", request=request) from None
        except OSError as exc:
            raise httpx.WriteError(f"sending the request failed: {type(exc).__name__}",
                                   request=request) from None

    async def read_head(self, request: httpx.Request, clock: ReadClock
                        ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bool]:
        """The status, reason, headers and whether the connection may be kept alive, skipping
        1xx interim answers."""
        while True:
            raw = await self._read(request, clock, self.reader.readuntil(b"\r\n\r\n"))
            status, reason, headers, keep = _parse_head(raw, request)
            if not 100 <= status < 200 or status == 101:
                return status, reason, headers, keep

    def buffered(self, at_least: int = 1) -> bool:
        """Whether `at_least` bytes already arrived: a `read` (or `readexactly(at_least)`)
        then returns at once."""
        return len(self.reader._buffer) >= at_least  # type: ignore[attr-defined]

    def whole_chunks(self) -> tuple[bytes, bool] | None:
        """The data of every chunk of a chunked body that already arrived whole and well
        formed — size line, data, CRLF — at the head of the reader's buffer, joined (taken
        out of the buffer), and whether the last chunk (`0`, CRLF, CRLF: no trailers) ended
        them; None when not even the first is whole, and nothing is consumed: that chunk is
        then read step by step, which also reports a malformed one and reads trailers.

        A provider sends each server-sent event as its own chunk, and several often arrive
        in one packet; they go up the stream as one piece, not one by one."""
        buf: bytearray = self.reader._buffer  # type: ignore[attr-defined]
        pos = 0
        parts: list[bytearray] = []
        last = False
        while pos < len(buf):
            if buf.startswith(_LAST_CHUNK, pos):
                pos += len(_LAST_CHUNK)
                last = True
                break
            head = _CHUNK_HEAD.match(buf, pos, pos + _CHUNK_LINE_FAST)
            if head is None:
                break
            size = int(head[1], 16)
            start = head.end()
            stop = start + size
            if size == 0 or size > READ_BYTES or len(buf) < stop + 2 \
                    or not buf.startswith(b"\r\n", stop):
                break
            parts.append(buf[start:stop])
            pos = stop + 2
        if pos == 0:
            return None
        data = b"".join(parts)
        self._consumed(pos)
        return data, last

    def _consumed(self, n: int) -> None:
        """Drop `n` bytes taken straight from the reader's buffer, as its reads would (reading
        resumes if the buffer was full)."""
        del self.reader._buffer[:n]  # type: ignore[attr-defined]
        self.reader._maybe_resume_transport()  # type: ignore[attr-defined]

    def line_buffered(self) -> bool:
        """Whether a whole line already arrived: `readuntil(b"\\r\\n")` then returns at once."""
        return b"\r\n" in self.reader._buffer  # type: ignore[attr-defined]

    async def _read(self, request: httpx.Request, clock: ReadClock,
                    step: Awaitable[bytes], at_once: bool = False) -> bytes:
        """`step` under the read timeout kept by `clock` (`at_once`: a read of bytes already
        buffered, which cannot wait, so it is not timed); failures as httpx's exceptions."""
        try:
            if at_once:
                return await step
            clock.started()
            try:
                return await step
            except asyncio.CancelledError:
                if clock.expired():
                    raise httpx.ReadTimeout("reading the response timed out",
                                            request=request) from None
                raise
            finally:
                clock.stopped()
        except asyncio.IncompleteReadError:
            raise httpx.RemoteProtocolError("the server closed the connection mid-response",
                                            request=request) from None
        except (asyncio.LimitOverrunError, ValueError):  # ValueError: a line over the limit
            raise httpx.RemoteProtocolError("response head or chunk line too long",
                                            request=request) from None
        except OSError as exc:
            raise httpx.ReadError(f"reading the response failed: {type(exc).__name__}",
                                  request=request) from None


class ReadClock:
    """The read timeout of one response — no read may wait longer than `timeout_s` — kept by
    one timer for the whole response instead of one per read.

    A read that may wait notes when it started (`started`) and that it ended (`stopped`). The
    timer is armed at the first such read for `timeout_s` ahead and left armed across reads;
    when it fires it looks at the read waiting then: none — it is re-armed by the next read;
    one that started less than `timeout_s` ago — it is re-armed for that read's deadline; one
    waiting `timeout_s` or longer — its task is cancelled, and the read raises `ReadTimeout`
    (`expired`), as `asyncio.timeout` around each read did. A response of many reads (a
    stream's spaced events) so costs one timer, not one per read (benchmarks/README.md,
    "One timer per response")."""

    __slots__ = ("_expired", "_handle", "_loop", "_since", "_task", "_timeout")

    def __init__(self, timeout_s: float | None) -> None:
        self._timeout = timeout_s
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None  # when the read waiting now started
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    def started(self) -> None:
        if self._timeout is None:
            return
        self._since = now = self._loop.time()
        self._task = asyncio.current_task()
        self._expired = False
        if self._handle is None:
            self._handle = self._loop.call_at(now + self._timeout, self._check)

    def stopped(self) -> None:
        self._since = None
        self._task = None

    def expired(self) -> bool:
        """Whether the read that was just cancelled was cancelled by this clock (and by
        nothing else: a cancellation from outside as well stays a cancellation)."""
        if not self._expired:
            return False
        self._expired = False
        task = asyncio.current_task()
        return task is None or task.uncancel() == 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._since = self._task = None

    def _check(self) -> None:
        self._handle = None
        since, task, timeout = self._since, self._task, self._timeout
        if since is None or task is None or timeout is None:
            return  # no read waits: the next one arms the timer again
        due = since + timeout
        if self._loop.time() + _CLOCK_SLACK_S < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self._expired = True
        task.cancel()


_CLOCK_SLACK_S = 0.001  # a timer may fire this much before its time (the loop's resolution)


def _request_head(request: httpx.Request) -> bytes:
    target = request.url.raw_path or b"/"
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    for name, value in request.headers.raw:
        if _FORBIDDEN.intersection(name) or _FORBIDDEN.intersection(value):
            raise httpx.LocalProtocolError(
                f"header {name.decode('latin-1')!r} holds CR, LF or NUL", request=request)
        lines.append(name + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _parse_head(raw: bytes, request: httpx.Request
                ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bool]:
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit() \
            or len(parts[1]) != 3:
        raise httpx.RemoteProtocolError("malformed status line", request=request)
    status = int(parts[1])
    reason = parts[2] if len(parts) == 3 else b""
    headers: list[tuple[bytes, bytes]] = []
    keep = parts[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or name[:1] in (b" ", b"\t"):
            raise httpx.RemoteProtocolError("malformed header line", request=request)
        value = value.strip(b" \t")
        lowered = name.lower()
        if lowered == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            if b"close" in tokens:
                keep = False
            elif b"keep-alive" in tokens:
                keep = True
        headers.append((name, value))
    return status, reason, headers, keep


LENGTH, CHUNKED, UNTIL_CLOSE, EMPTY = "length", "chunked", "close", "empty"


def _framing(request: httpx.Request, status: int, headers: list[tuple[bytes, bytes]]
             ) -> tuple[str, int]:
    if request.method == "HEAD" or status in (204, 304):
        return EMPTY, 0
    lengths: set[bytes] = set()
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            if value.lower().rsplit(b",", 1)[-1].strip() == b"chunked":
                return CHUNKED, 0
            return UNTIL_CLOSE, 0
        if lowered == b"content-length":
            lengths.update(v.strip() for v in value.split(b","))
    if not lengths:
        return UNTIL_CLOSE, 0
    if len(lengths) > 1 or not all(v.isdigit() and len(v) <= 18 for v in lengths):
        raise httpx.RemoteProtocolError("malformed Content-Length", request=request)
    return LENGTH, int(lengths.pop())


class _Body(httpx.AsyncByteStream):
    """A response body, read as it arrives; its connection goes back to the pool once the body
    was read to its end (and the server allows), or is closed."""

    def __init__(self, transport: Http1Transport, origin: _Origin, conn: _Conn,
                 request: httpx.Request, framing: str, length: int, keep: bool,
                 clock: ReadClock) -> None:
        self._transport = transport
        self._origin = origin
        self._conn = conn
        self._request = request
        self._framing = framing
        self._length = length
        self._keep = keep and framing != UNTIL_CLOSE
        self._clock = clock
        self._complete = framing == EMPTY or (framing == LENGTH and length == 0)
        self._released = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._framing == CHUNKED and not self._complete:
            return self._chunks()  # (no generator in between: a stream's every piece)
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes]:
        if self._complete:
            return
        conn, request, t = self._conn, self._request, self._clock
        reader = conn.reader
        if self._framing == LENGTH:
            left = self._length
            while left:
                data = await conn._read(request, t, reader.read(min(left, READ_BYTES)),
                                        conn.buffered())
                if not data:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection before the body's end",
                        request=request)
                left -= len(data)
                yield data
        else:
            while data := await conn._read(request, t, reader.read(READ_BYTES)):
                yield data
        self._complete = True

    async def _chunks(self) -> AsyncIterator[bytes]:
        """A chunked body's data; `_complete` once its last chunk (and trailers) were read."""
        conn, request, t = self._conn, self._request, self._clock
        reader = conn.reader
        while True:
            whole = conn.whole_chunks()
            if whole is not None:  # the common case: whole chunks already arrived
                data, last = whole
                if last:  # the last chunk, without trailers: read to the end already
                    self._complete = True
                if data:
                    yield data
                if last:
                    return
                continue
            line = await conn._read(request, t, reader.readuntil(b"\r\n"),
                                    conn.line_buffered())
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16) if size_text and len(size_text) <= 16 else -1
            except ValueError:
                size = -1
            if size < 0:
                raise httpx.RemoteProtocolError("malformed chunk size", request=request)
            if size == 0:
                while await conn._read(request, t, reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                self._complete = True
                return
            while size:
                data = await conn._read(request, t, reader.read(min(size, READ_BYTES)),
                                        conn.buffered())
                if not data:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection mid-chunk", request=request)
                size -= len(data)
                yield data
            if await conn._read(request, t, reader.readexactly(2), conn.buffered(2)) != b"\r\n":
                raise httpx.RemoteProtocolError("malformed chunk end", request=request)

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._clock.close()
            self._transport._release(self._origin, self._conn,
                                     reusable=self._complete and self._keep)


async def close_response(response: httpx.Response) -> None:
    """`response.aclose()`; a response of this transport is closed without httpx's wrapper
    around it (a context manager that only attaches the request to an exception, which this
    transport's exceptions already carry: ~3 % of a plain call's CPU)."""
    stream = response.stream
    if isinstance(stream, _Body):
        if not response.is_closed:
            response.is_closed = True
            await stream.aclose()
        return
    await response.aclose()


def read_to_end(response: httpx.Response) -> bool:
    """Whether the whole body of a response of this transport has been taken from its
    connection (what is left to iterate is already in hand: no read waits)."""
    stream = response.stream
    return isinstance(stream, _Body) and stream._complete


def body_pieces(response: httpx.Response) -> AsyncIterator[bytes]:
    """A response's body as it arrives: straight from this transport's reader when it needs no
    decoding (two generators fewer per piece than httpx's `aiter_bytes`, which it otherwise
    is: a `Content-Encoding`, or another transport's response)."""
    stream = response.stream
    if isinstance(stream, _Body) and response.headers.get("content-encoding",
                                                          "identity") == "identity":
        return stream.__aiter__()
    return response.aiter_bytes()


# What httpx's client would add unless given (its `Accept-Encoding` without br/zstd, which
# depend on optional packages); `Connection: keep-alive` is HTTP/1.1's default.
DEFAULT_HEADERS = (("accept", "*/*"), ("accept-encoding", "gzip, deflate"),
                   ("user-agent", "unhardcoded"))
MAX_CACHED_URLS = 1024


class LeanClient(httpx.AsyncClient):
    """An httpx client whose `send` goes straight to its `Http1Transport`, skipping the auth
    flow, cookie jar, redirect handling, event hooks and elapsed-time wrapper (~0.2 ms per
    call): the router sets every header itself, keeps no cookies and follows no redirects.
    `Response` and its decoding are httpx's; `build_request` too, with `request_for` as the
    router's cheaper way to make its requests."""

    def __init__(self, transport: Http1Transport) -> None:
        super().__init__(transport=transport, follow_redirects=False, trust_env=False)
        self._lean = transport
        self._urls: dict[str, tuple[httpx.URL, str]] = {}  # URL: parsed, its Host header

    def request_for(self, method: str, url: str, body: bytes | None,
                    headers: dict[str, str], timeout_s: float) -> httpx.Request:
        """A request with `headers`, plus `Host`, `Content-Length` and `DEFAULT_HEADERS` those do
        not set, without the client's merges (~0.1 ms per call less than `build_request`);
        parsed URLs are kept (the router calls a few endpoints)."""
        known = self._urls.get(url)
        if known is None:
            parsed = httpx.URL(url)
            known = (parsed, parsed.netloc.decode("ascii") if parsed.host else "")
            if len(self._urls) >= MAX_CACHED_URLS:
                self._urls.clear()
            self._urls[url] = known
        parsed, host = known
        given = {k.lower() for k in headers}
        sent: list[tuple[str, str]] = []
        # The headers httpx's `Request(content=...)` adds, in its order, made here: handing
        # httpx the body as a stream skips its re-parse of every header (~20 µs per call).
        if "host" not in given and host:
            sent.append(("Host", host))
        if not body and "content-length" not in given and "transfer-encoding" not in given \
                and method in ("POST", "PUT", "PATCH"):
            sent.append(("Content-Length", "0"))
        sent.extend(headers.items())
        sent.extend((name, value) for name, value in DEFAULT_HEADERS if name not in given)
        if body and "content-length" not in given:
            sent.append(("Content-Length", str(len(body))))
        limits = {"connect": timeout_s, "read": timeout_s, "write": timeout_s,
                  "pool": timeout_s}
        request = httpx.Request(method, parsed, headers=sent, stream=httpx.ByteStream(body or b""),
                                extensions={"timeout": limits})
        request.read()  # (the body is in memory: `request.content` works, as with content=)
        return request

    async def send(self, request: httpx.Request, *, stream: bool = False,
                   auth: httpx._types.AuthTypes | httpx._client.UseClientDefault | None
                   = httpx.USE_CLIENT_DEFAULT,
                   follow_redirects: bool | httpx._client.UseClientDefault
                   = httpx.USE_CLIENT_DEFAULT) -> httpx.Response:
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        response = await self._lean.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response


def new_request(client: httpx.AsyncClient, method: str, url: str, body: bytes | None,
                headers: dict[str, str], timeout_s: float) -> httpx.Request:
    """`client`'s request for a provider call: `LeanClient.request_for`, or httpx's
    `build_request` for any other client."""
    if isinstance(client, LeanClient):
        return client.request_for(method, url, body, headers, timeout_s)
    return client.build_request(method, url, content=body, headers=headers, timeout=timeout_s)
