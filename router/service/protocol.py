"""uvicorn's HTTP/1.1 protocols with a bounded request head, and a safe answer to a request they
cannot parse.

- **The head is bounded while it arrives.** h11 buffers at most `MAX_HEAD_BYTES` of an
  incomplete head (its own bound). httptools has none, so `BoundedHttpToolsProtocol` counts
  the bytes of a head still arriving and refuses it past `MAX_HEAD_BYTES` (a head's bytes
  are counted from the first read after its request began: at most one read more). A whole
  head over 16 KiB is refused by the app (431) as before.
- **The refusal is readable.** uvicorn answers a plain-text 400 and closes the socket at once.
  Closing a socket that still holds unread bytes of the request makes the kernel send a reset,
  which can destroy the answer before the client reads it (seen: a 40 KiB header, split over
  two reads, failed with "connection reset by peer" in 1 run in 5). Here the answer is in
  OpenAI's error shape — 431 `headers_too_large` for a head over the bound, 400
  `bad_http_request` for anything else — with `Connection: close`. The connection then
  lingers: our side is shut for writing, and what the client still sends is read and dropped,
  for at most `LINGER_S` and `LINGER_BYTES`, before the socket closes.

Both write through `CoalescingTransport` (`router.service.coalesce`): what one loop turn
writes leaves in one send, and a whole answer leaves at once.

`BoundedHttpToolsProtocol` serves where httptools is installed (it is faster, see
`benchmarks/README.md`), `BoundedH11Protocol` elsewhere (`server.http_protocol`).
"""

from __future__ import annotations

import asyncio
import http
import json
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from router.service.coalesce import CoalescingTransport

MAX_HEAD_BYTES = 16 * 1024
LINGER_S = 1.0
LINGER_BYTES = 64 * 1024


def refusal(status: int, detail: str | None = None) -> bytes:
    """A whole HTTP/1.1 answer refusing a request the protocol could not take."""
    if status == 431:
        code, message = "headers_too_large", f"the request head is over {MAX_HEAD_BYTES} bytes"
    else:
        code = "bad_http_request"
        message = "not a valid HTTP/1.1 request" + (f" ({detail})" if detail else "")
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                 "code": code, "param": None}}).encode()
    head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")
    return head.encode() + body


class Lingering:
    """After a refusal: shut our side for writing, read and drop what the client still sends,
    close at its end of file, after `LINGER_S`, or past `LINGER_BYTES`."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.dropped = 0
        if transport.can_write_eof():
            transport.write_eof()
        self.timer = loop.call_later(LINGER_S, transport.close)

    def drop(self, data: bytes) -> None:
        self.dropped += len(data)
        if self.dropped > LINGER_BYTES:
            self.transport.close()

    def end(self) -> None:
        self.timer.cancel()
        self.transport.close()


class _Connection(h11.Connection):
    """h11's connection, remembering the last protocol error (its status hint)."""

    last_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.last_error = exc
            raise


class _Served:
    """What both protocols add: coalesced writes (an answer leaves whole, at once) and the
    lingering after a refusal."""

    loop: asyncio.AbstractEventLoop
    lingering: Lingering | None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.coalesced = CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(self.coalesced)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        self.coalesced.flush()  # the answer is whole: it leaves now
        super().on_response_complete()  # type: ignore[misc]

    def eof_received(self) -> None:
        if self.lingering is not None:
            self.lingering.end()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lingering is not None:
            self.lingering.timer.cancel()
        super().connection_lost(exc)  # type: ignore[misc]


class BoundedH11Protocol(_Served, H11Protocol):
    """uvicorn's h11 protocol with the refusal above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn: _Connection = _Connection(h11.SERVER, MAX_HEAD_BYTES)
        self.lingering: Lingering | None = None

    def send_400_response(self, msg: str) -> None:
        error = self.conn.last_error
        status = 431 if error is not None and error.error_status_hint == 431 else 400
        self.logger.warning("refused a request (%d): %s", status, error or msg)
        self.transport.write(refusal(status, str(error) if error else None))
        self.lingering = Lingering(self.transport, self.loop)

    def data_received(self, data: bytes) -> None:
        if self.lingering is not None:
            self.lingering.drop(data)
            return
        super().data_received(data)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: h11 serves
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

if HttpToolsProtocol is not None:

    class BoundedHttpToolsProtocol(_Served, HttpToolsProtocol):
        """uvicorn's httptools protocol with a bounded head and the refusal above."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.lingering: Lingering | None = None
            self.head_bytes = 0  # of a head still arriving
            self.in_head = True

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.in_head, self.head_bytes = True, 0

        def on_headers_complete(self) -> None:
            self.in_head = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            if self.lingering is not None:
                self.lingering.drop(data)
                return
            if self.in_head:
                self.head_bytes += len(data)
            super().data_received(data)
            if self.in_head and self.head_bytes > MAX_HEAD_BYTES and self.lingering is None \
                    and not self.transport.is_closing():
                self.refuse(431)

        def send_400_response(self, msg: str) -> None:
            self.refuse(400)

        def refuse(self, status: int) -> None:
            self.logger.warning("refused a request (%d)", status)
            if self.cycle is not None and not self.cycle.response_complete:
                # a pipelined request behind one still answering: close after that answer
                self.cycle.keep_alive = False
                self.flow.pause_reading()
                return
            self.transport.write(refusal(status))
            self.lingering = Lingering(self.transport, self.loop)
