"""The service's HTTP/1.1 protocols (`router.service.protocol`), each under a real uvicorn server
on 127.0.0.1 with a small ASGI app: a head is bounded while it arrives, a request that cannot
be parsed is answered in OpenAI's shape, and the answer is not lost to a reset."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from router.service import protocol
from router.service.server import http_protocol
from tests.service_support import free_port, raw_exchange

PROTOCOLS = ["router.service.protocol:BoundedH11Protocol",
             "router.service.protocol:BoundedHttpToolsProtocol"]


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"got " + body})


@contextlib.contextmanager
def running(app: Any, http: Any) -> Iterator[int]:
    """A real uvicorn server for `app` with protocol `http`, in a thread: its port."""
    chosen = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=chosen, http=http, lifespan="off",
                            log_level="error",
                            h11_max_incomplete_event_size=protocol.MAX_HEAD_BYTES)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield chosen
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(params=PROTOCOLS, ids=["h11", "httptools"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    with running(echo_app, request.param) as chosen:
        yield chosen


def answer(got: bytes) -> tuple[bytes, dict[str, Any]]:
    status, _, rest = got.partition(b"\r\n")
    head, _, body = rest.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    return status, json.loads(body)["error"]


def test_a_head_over_the_bound_arriving_in_pieces_is_answered_431(port: int) -> None:
    head = b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nx-filler: " + b"a" * 10_000
    for _ in range(3):
        status, error = answer(raw_exchange(port, head, b"b" * 30_000, b"\r\n\r\nhello"))
        assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
        assert error["code"] == "headers_too_large"
        assert error["type"] == "invalid_request_error"
    assert httpx.post(f"http://127.0.0.1:{port}/", content=b"hi").text == "got hi"


def test_a_head_that_never_ends_is_refused_once_past_the_bound(port: int) -> None:
    """Without a bound, httptools would buffer a header line until it ends: no answer ever."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nx-endless: ")
        for _ in range(12):  # 48 KiB of one header value, no line end
            sock.sendall(b"z" * 4096)
            time.sleep(0.01)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    status, error = answer(got)
    assert status.startswith(b"HTTP/1.1 431") and error["code"] == "headers_too_large"


def test_a_request_that_is_not_http_is_answered_400(port: int) -> None:
    status, error = answer(raw_exchange(port, b"HELLO THERE\r\n\r\n"))
    assert status == b"HTTP/1.1 400 Bad Request"
    assert error["code"] == "bad_http_request"


def test_requests_within_the_bound_are_served_on_one_connection(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(5):
            r = client.post("/", content=f"n{i}".encode(),
                            headers={"x-filler": "a" * (protocol.MAX_HEAD_BYTES // 2)})
            assert r.text == f"got n{i}"


def test_the_service_serves_with_the_fastest_protocol_installed() -> None:
    assert http_protocol() == "router.service.protocol:BoundedHttpToolsProtocol"


AFTER_THE_ANSWER = {"working": False}


async def burst_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A streamed answer whose head and five events are all written in one loop turn, then
    work in the same turn after the last write."""
    if scope["type"] != "http":
        return
    AFTER_THE_ANSWER["working"] = False
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for i in range(5):
        await send({"type": "http.response.body", "body": b"data: %d\n\n" % i,
                    "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
    AFTER_THE_ANSWER["working"] = True  # (metrics, records: what a handler does after)


@pytest.mark.parametrize("name", PROTOCOLS, ids=["h11", "httptools"])
def test_what_one_turn_writes_reaches_the_socket_in_one_write(name: str) -> None:
    """Through `CoalescingTransport` (tests/test_service_coalesce.py): the real transport
    under each protocol sees one write per answer, not one per ASGI message, made when the
    answer is whole."""
    import importlib

    module, _, cls = name.partition(":")
    base = getattr(importlib.import_module(module), cls)
    writes: list[bytes] = []
    sent_while_working: list[bool] = []

    class Counted:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def write(self, data: bytes) -> None:
            writes.append(data)
            sent_while_working.append(AFTER_THE_ANSWER["working"])
            self.inner.write(data)

    class Counting(base):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(Counted(transport))

    with running(burst_app, Counting) as chosen:
        with httpx.Client() as client:  # two answers on one connection: one write each
            for _ in range(2):
                r = client.get(f"http://127.0.0.1:{chosen}/")
                assert r.text == "".join(f"data: {i}\n\n" for i in range(5)) + "data: [DONE]\n\n"
        assert len(writes) == 2, [len(w) for w in writes]
        assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") for w in writes)
        # a whole answer leaves at once, not after what the handler does next
        assert sent_while_working == [False, False]
