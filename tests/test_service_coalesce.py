"""`CoalescingTransport`: what one loop turn writes leaves in one send, in order; nothing is
held past the turn; close and write_eof send what is kept first; abort drops it.

The real transport underneath is a real socket's (a connected pair on this machine) wrapped
so its `write` calls are counted; the bytes are read back from the other end."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from router.service.coalesce import CoalescingTransport


class Counted:
    """Wraps the real transport: counts and remembers each `write` that reaches it."""

    def __init__(self, inner: asyncio.Transport) -> None:
        self.inner = inner
        self.writes: list[bytes] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.inner.write(data)


async def pair() -> tuple[CoalescingTransport, Counted, socket.socket]:
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    counted = Counted(transport)  # type: ignore[arg-type]
    theirs.settimeout(5)
    return CoalescingTransport(counted, loop), counted, theirs  # type: ignore[arg-type]


def read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_writes_of_one_turn_leave_in_one_write_in_order() -> None:
    async def go() -> None:
        t, counted, theirs = await pair()
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(bytearray(b"data: 1\n\n"))
        t.write(b"")  # nothing to send: nothing kept
        t.write(memoryview(b"data: 2\n\n"))
        assert counted.writes == [] and t.get_write_buffer_size() == 19 + 9 + 9
        await asyncio.sleep(0)  # the turn ends
        assert counted.writes == [b"HTTP/1.1 200 OK\r\n\r\ndata: 1\n\ndata: 2\n\n"]
        t.write(b"data: 3\n\n")  # a later turn: its own write
        await asyncio.sleep(0)
        assert counted.writes[1:] == [b"data: 3\n\n"]
        t.close()
        await asyncio.sleep(0.01)
        assert read_all(theirs) == b"HTTP/1.1 200 OK\r\n\r\ndata: 1\n\ndata: 2\n\ndata: 3\n\n"
    asyncio.run(go())


def test_flush_sends_what_is_kept_at_once() -> None:
    async def go() -> None:
        t, counted, theirs = await pair()
        t.write(b"head ")
        t.write(b"body")
        t.flush()  # the protocol's "the answer is whole"
        assert counted.writes == [b"head body"] and t.get_write_buffer_size() == 0
        await asyncio.sleep(0)  # the turn's callback finds nothing left
        assert counted.writes == [b"head body"]
        t.close()
        await asyncio.sleep(0.01)
        assert read_all(theirs) == b"head body"
    asyncio.run(go())


def test_close_and_write_eof_send_what_is_kept_first() -> None:
    async def go() -> None:
        t, counted, theirs = await pair()
        t.write(b"last words")
        t.close()  # before the turn ends
        assert counted.writes == [b"last words"] and t.is_closing()
        t.write(b"after close")  # dropped, as a closed transport drops it
        await asyncio.sleep(0.01)
        assert read_all(theirs) == b"last words"

        t, counted, theirs = await pair()
        t.write(b"answer")
        assert t.can_write_eof()
        t.write_eof()
        assert counted.writes == [b"answer"]
        await asyncio.sleep(0.01)
        assert read_all(theirs) == b"answer"  # end of file after the answer
        t.close()
    asyncio.run(go())


def test_abort_drops_what_is_kept() -> None:
    async def go() -> None:
        t, counted, theirs = await pair()
        t.write(b"never sent")
        t.abort()
        await asyncio.sleep(0.01)
        assert counted.writes == []
        assert read_all(theirs) == b""
    asyncio.run(go())


def test_reading_controls_and_extra_info_are_the_real_transports() -> None:
    async def go() -> None:
        t, counted, _ = await pair()
        assert t.get_extra_info("socket") is counted.inner.get_extra_info("socket")
        t.pause_reading()
        assert not t.is_reading()
        t.resume_reading()
        assert t.is_reading()
        t.set_write_buffer_limits(high=1024)
        assert t.get_write_buffer_limits()[1] == 1024
        t.close()
    asyncio.run(go())
