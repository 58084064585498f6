"""uvicorn's h11 protocol, with the answer to a request it cannot parse made safe to read.

h11 buffers at most `MAX_HEAD_BYTES` of an incomplete request head. When a head is longer, or
a request is not HTTP, uvicorn answers a plain-text 400 and closes the socket at once. Two
things go wrong with that: the status says nothing about the cause, and closing a socket that
still holds unread bytes of the request makes the kernel send a reset, which can destroy the
answer before the client reads it (seen: a 40 KiB header, split over two reads, failed with
"connection reset by peer" in 1 run in 5).

Here the answer is in OpenAI's error shape, 431 `headers_too_large` for a head over the bound
(h11's own status hint) and 400 `bad_http_request` otherwise, with `Connection: close`. The
connection then lingers: our side is shut for writing, and whatever the client still sends is
read and dropped, for at most `LINGER_S` and `LINGER_BYTES`, before the socket closes.
"""

from __future__ import annotations

import asyncio
import http
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEAD_BYTES = 16 * 1024  # what h11 buffers of an incomplete request head
LINGER_S = 1.0
LINGER_BYTES = 64 * 1024


class _Connection(h11.Connection):
    """h11's connection, remembering the last protocol error (its status hint)."""

    last_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.last_error = exc
            raise


def refusal(error: h11.RemoteProtocolError | None) -> tuple[int, bytes]:
    """The status and JSON body answering a request h11 could not parse."""
    if error is not None and error.error_status_hint == 431:
        status, code = 431, "headers_too_large"
        message = f"the request head is over {MAX_HEAD_BYTES} bytes"
    else:
        status, code = 400, "bad_http_request"
        message = "not a valid HTTP/1.1 request" + (f" ({error})" if error else "")
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code,
                      "param": None}}
    return status, json.dumps(body).encode()


class BoundedH11Protocol(H11Protocol):
    """`H11Protocol` with the refusal above. Selected by `uvicorn.Config(http=...)`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn: _Connection = _Connection(h11.SERVER, MAX_HEAD_BYTES)
        self._lingering = False
        self._lingered = 0
        self._linger_timer: asyncio.TimerHandle | None = None

    def send_400_response(self, msg: str) -> None:
        status, body = refusal(self.conn.last_error)
        self.logger.warning("refused a request h11 could not parse (%d): %s", status,
                            self.conn.last_error or msg)
        headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                   (b"content-length", str(len(body)).encode())]
        reason = http.HTTPStatus(status).phrase.encode()
        for event in (h11.Response(status_code=status, headers=headers, reason=reason),
                      h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self._linger()

    def _linger(self) -> None:
        """Shut our side for writing; drop what the client still sends, then close."""
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.close()
            return
        super().data_received(data)

    def eof_received(self) -> None:
        if self._lingering:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)
