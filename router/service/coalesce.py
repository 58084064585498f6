"""Writes made in one turn of the event loop leave in one send.

uvicorn writes each ASGI message to the socket as it comes: a response's head, then each body
part. A streamed answer is a head and one write per server-sent event; a plain answer is two
writes. Each write is a system call, and on a loopback or LAN socket the sender's call does
much of the receiver's work too. `CoalescingTransport` sits between uvicorn's protocol and the
real transport: a write is kept, and at the end of the loop turn that made it (a `call_soon`
callback, so no timer and no added wait) everything kept leaves in one write — or at once when
the protocol says the answer is whole (`flush`), so the work a handler does after its last
write never delays the answer. A plain answer's head and body leave together; so do events a
provider sent together — the last chunk, the usage chunk, `[DONE]`; an event that arrives
alone leaves alone, as soon as the task that wrote it yields.

`close` and `write_eof` send what is kept first; `abort` drops it, as it drops the real
transport's buffer. What is kept counts in `get_write_buffer_size`.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport(asyncio.Transport):
    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner = inner
        self._loop = loop
        self._kept: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._kept.append(bytes(data))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what is kept now (the protocol calls it when an answer is whole)."""
        self._scheduled = False
        if not self._kept:
            return
        data = self._kept[0] if len(self._kept) == 1 else b"".join(self._kept)
        self._kept.clear()
        if not self._inner.is_closing():  # (a write after close is dropped, as asyncio does)
            self._inner.write(data)

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def write_eof(self) -> None:
        self.flush()
        self._inner.write_eof()

    def abort(self) -> None:
        self._kept.clear()
        self._inner.abort()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(map(len, self._kept))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()
