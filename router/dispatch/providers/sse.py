"""Server-sent events: an incremental parser and an encoder (pure; no I/O).

`SSEParser` follows the WHATWG event-stream rules, so one parser serves both Anthropic streams
(named events: `event: message_start` + `data: {...}`) and OpenAI streams (bare `data:` lines
ending in `data: [DONE]`):

- lines end in CRLF, LF or a lone CR, and a CRLF split across two `feed` calls counts once;
- `data:` lines of one event are joined with `\\n`; one space after the colon is removed;
- lines starting with `:` are comments (keep-alives) and are skipped;
- an event is dispatched at a blank line, and only if it had at least one `data` line;
  an event without an `event:` line is named `message` (so OpenAI chunks arrive as `message`);
- `id:` sets `last_event_id` (unless it holds NUL), `retry:` with ASCII digits sets `retry`;
  other fields are ignored; a byte-order mark at the very start is dropped;
- text after the last line ending is held until more arrives; at the end of the stream an
  unterminated event is never dispatched (see `pending`);
- with `max_event_chars`, a line or an event's data longer than that raises
  `SSEEventTooLarge` as soon as it is seen (so an endless line is never held whole).

`feed` takes decoded text (e.g. `httpx.Response.aiter_text()`); `feed_bytes` decodes UTF-8
incrementally, so a multi-byte character split across chunks is not damaged.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

__all__ = ["DONE", "SSEEvent", "SSEEventTooLarge", "SSEParser", "encode_sse", "iter_sse"]

DONE = "[DONE]"  # the data of OpenAI's last stream event

_EOL = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


class SSEEvent(NamedTuple):
    """One dispatched event; unpacks as `(event, data)`."""

    event: str
    data: str


class SSEEventTooLarge(ValueError):
    """A line or an event's data grew past the parser's `max_event_chars`."""


class SSEParser:
    """Incremental event-stream parser: feed text in arbitrary pieces, get whole events back."""

    def __init__(self, max_event_chars: int | None = None) -> None:
        self.max_event_chars = max_event_chars
        self._partial: list[str] = []  # pieces of the current, unterminated line
        self._partial_chars = 0
        self._data_chars = 0
        self._skip_lf = False  # the previous piece ended in CR: a leading LF ends no line
        self._started = False  # past the first character (for the byte-order mark)
        self._event = ""
        self._data: list[str] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.last_event_id = ""
        self.retry: int | None = None

    @property
    def pending(self) -> bool:
        """True while an unterminated line or an undispatched event is buffered."""
        return bool(self._data or any(self._partial))

    def feed(self, text: str) -> list[SSEEvent]:
        """Parse the next piece of the stream; return the events it completed, in order."""
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith(_BOM):
                text = text[1:]
        events: list[SSEEvent] = []
        if not (self._skip_lf or self._partial or "\r" in text):
            # The common piece: whole LF-terminated lines, nothing held from before.
            if "\n\n" in text and not (self._data or self._event):
                # ... and whole events from an event's start: taken a block at a time
                *blocks, text = text.split("\n\n")
                for block in blocks:
                    self._block(block, events)
            *lines, rest = text.split("\n")
            for line in lines:
                self._check(len(line))
                self._line(line, events)
            if rest:
                self._partial.append(rest)
                self._partial_chars = len(rest)
                self._check(len(rest))
            return events
        start = 0
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                start = 1
        for match in _EOL.finditer(text, start):
            self._partial.append(text[start : match.start()])
            line = "".join(self._partial)
            self._partial.clear()
            self._partial_chars = 0
            self._check(len(line))
            self._line(line, events)
            start = match.end()
        if start < len(text):
            self._partial.append(text[start:])
            self._partial_chars += len(text) - start
            self._check(self._partial_chars)
        self._skip_lf = text.endswith("\r")
        return events

    def _block(self, block: str, events: list[SSEEvent]) -> None:
        """The lines of one event, its blank line removed, parsed from a clean state. The usual
        event, one `data:` line (OpenAI's every chunk), is taken whole."""
        if block.startswith("data:") and "\n" not in block:
            self._check(len(block))
            value = block[6:] if block.startswith("data: ") else block[5:]
            self._check(len(value) + 1)
            events.append(SSEEvent("message", value))
            return
        for line in block.split("\n"):
            self._check(len(line))
            self._line(line, events)
        self._line("", events)

    def _check(self, chars: int) -> None:
        if self.max_event_chars is not None and chars > self.max_event_chars:
            raise SSEEventTooLarge(f"an event-stream line or event over {self.max_event_chars} "
                                   f"characters")

    def feed_bytes(self, data: bytes) -> list[SSEEvent]:
        """Like `feed`, for raw UTF-8 bytes (invalid sequences become U+FFFD)."""
        return self.feed(self._decoder.decode(data))

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(SSEEvent(self._event or "message", "\n".join(self._data)))
            self._data = []
            self._data_chars = 0
            self._event = ""
            return
        if line.startswith(":"):
            return
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data_chars += len(value) + 1
            self._check(self._data_chars)
            self._data.append(value)
        elif field == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)


def iter_sse(pieces: Iterable[str]) -> Iterator[SSEEvent]:
    """Every event in a stream given as text pieces (lines, chunks, or one string)."""
    parser = SSEParser()
    for piece in pieces:
        yield from parser.feed(piece)


def encode_sse(data: str, event: str | None = None) -> str:
    """One event in wire form; `parse(encode(d, e)) == (e or "message", d)` for `d` without CR.

    Line breaks in `data` become separate `data:` lines (a CR or CRLF comes back as LF).
    """
    if event is not None and _EOL.search(event):
        raise ValueError("an SSE event name cannot contain a line break")
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in _EOL.split(data)) + "\n"
