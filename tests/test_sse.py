"""The event-stream parser (`router.dispatch.providers.sse`): WHATWG line and field rules,
Anthropic's named events and OpenAI's bare `data:` lines, and pieces split at every position."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from router.dispatch.providers.sse import DONE, SSEEvent, SSEParser, encode_sse, iter_sse

# An Anthropic-style stream (named events, a comment, a ping, non-ASCII text, CRLF and lone-CR
# line endings) and an OpenAI-style stream (bare data lines ending in [DONE]).
ANTHROPIC = (
    "\ufeffevent: message_start\r\n"
    'data: {"type":"message_start","message":{"id":"msg_1"}}\r\n'
    "\r\n"
    ": keep-alive comment\n"
    "event: ping\n"
    'data: {"type": "ping"}\n'
    "\n"
    "event: content_block_delta\r"
    'data: {"type":"content_block_delta","delta":{"text":"héllo — 世界 🌍"}}\r'
    "\r"
    "event: message_stop\n"
    'data: {"type":"message_stop"}\n'
    "\n"
)
ANTHROPIC_EVENTS = [
    ("message_start", '{"type":"message_start","message":{"id":"msg_1"}}'),
    ("ping", '{"type": "ping"}'),
    ("content_block_delta", '{"type":"content_block_delta","delta":{"text":"héllo — 世界 🌍"}}'),
    ("message_stop", '{"type":"message_stop"}'),
]
OPENAI = (
    'data: {"id":"c1","choices":[{"delta":{"content":"a"}}]}\n\n'
    ":\n"
    'data: {"id":"c1","choices":[{"delta":{"content":"b\\n"}}]}\r\n\r\n'
    "data: [DONE]\n\n"
)
OPENAI_EVENTS = [
    ("message", '{"id":"c1","choices":[{"delta":{"content":"a"}}]}'),
    ("message", '{"id":"c1","choices":[{"delta":{"content":"b\\n"}}]}'),
    ("message", DONE),
]


def parse(*pieces: str) -> list[tuple[str, str]]:
    parser = SSEParser()
    return [(e.event, e.data) for piece in pieces for e in parser.feed(piece)]


def test_events_are_named_tuples() -> None:
    [event] = SSEParser().feed("event: x\ndata: y\n\n")
    assert event == SSEEvent("x", "y")
    assert (event.event, event.data) == ("x", "y")
    name, data = event
    assert (name, data) == ("x", "y")


def test_anthropic_stream_whole() -> None:
    assert parse(ANTHROPIC) == ANTHROPIC_EVENTS


def test_openai_stream_whole() -> None:
    assert parse(OPENAI) == OPENAI_EVENTS


def test_split_at_every_position() -> None:
    for stream, expected in ((ANTHROPIC, ANTHROPIC_EVENTS), (OPENAI, OPENAI_EVENTS)):
        for cut in range(len(stream) + 1):
            assert parse(stream[:cut], stream[cut:]) == expected, cut


def test_split_at_every_pair_of_positions() -> None:
    stream = OPENAI
    for a in range(len(stream) + 1):
        for b in range(a, len(stream) + 1, 3):
            assert parse(stream[:a], stream[a:b], stream[b:]) == OPENAI_EVENTS, (a, b)


def test_one_character_at_a_time() -> None:
    assert parse(*ANTHROPIC) == ANTHROPIC_EVENTS


def test_bytes_split_at_every_byte_position() -> None:
    raw = ANTHROPIC.encode("utf-8")
    for cut in range(len(raw) + 1):
        parser = SSEParser()
        events = parser.feed_bytes(raw[:cut]) + parser.feed_bytes(raw[cut:])
        assert [tuple(e) for e in events] == ANTHROPIC_EVENTS, cut


def test_bytes_one_at_a_time() -> None:
    parser = SSEParser()
    raw = ANTHROPIC.encode()
    events = [e for i in range(len(raw)) for e in parser.feed_bytes(raw[i : i + 1])]
    assert [tuple(e) for e in events] == ANTHROPIC_EVENTS


def test_crlf_split_between_pieces_is_one_line_ending() -> None:
    # "\r" | "\n" must not count as two line endings (which would dispatch early).
    assert parse("data: a\r", "\ndata: b\r", "\n\r", "\n") == [("message", "a\nb")]
    assert parse("data: a\r", "\r") == [("message", "a")]


def test_multi_line_data_joined_with_newline() -> None:
    assert parse("data: one\ndata:two\ndata:  three\ndata\n\n") == [
        ("message", "one\ntwo\n three\n")
    ]


def test_field_rules() -> None:
    stream = (
        "event:named\n"  # no space after the colon
        "id: 7\n"
        "retry: 1500\n"
        "unknown: ignored\n"
        "data\n"  # a field name alone: empty value
        "\n"
    )
    parser = SSEParser()
    assert [tuple(e) for e in parser.feed(stream)] == [("named", "")]
    assert parser.last_event_id == "7"
    assert parser.retry == 1500
    parser.feed("retry: soon\nid: a\0b\n\n")
    assert parser.retry == 1500
    assert parser.last_event_id == "7"


def test_event_without_data_is_not_dispatched_and_name_resets() -> None:
    assert parse("event: lonely\n\ndata: x\n\n") == [("message", "x")]


def test_comments_and_blank_lines_only() -> None:
    assert parse(": ping\n\n:\n\n\n\n") == []


def test_bom_only_at_start() -> None:
    assert parse("\ufeff", "data: a\n\n") == [("message", "a")]
    assert parse("data: \ufeffa\n\n") == [("message", "\ufeffa")]


def test_unterminated_event_is_pending_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed("data: a\n\ndata: partial") == [SSEEvent("message", "a")]
    assert parser.pending
    assert parser.feed("\n") == []
    assert parser.pending
    assert parser.feed("\n") == [SSEEvent("message", "partial")]
    assert not parser.pending


def test_invalid_utf8_is_replaced() -> None:
    assert [tuple(e) for e in SSEParser().feed_bytes(b"data: \xff\n\n")] == [("message", "\ufffd")]


def test_iter_sse_over_lines() -> None:
    assert [tuple(e) for e in iter_sse(ANTHROPIC.splitlines(keepends=True))] == ANTHROPIC_EVENTS


def test_encode() -> None:
    assert encode_sse('{"a":1}') == 'data: {"a":1}\n\n'
    assert encode_sse("x\ny", "message_stop") == "event: message_stop\ndata: x\ndata: y\n\n"
    assert encode_sse("") == "data: \n\n"
    assert parse(encode_sse("")) == [("message", "")]


def test_encode_refuses_line_break_in_name() -> None:
    try:
        encode_sse("x", "a\nb")
    except ValueError:
        pass
    else:
        raise AssertionError("expected ValueError")


_names = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
_data = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(st.tuples(_names, _data), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    as_bytes=st.booleans(),
)
def test_encode_then_parse_round_trips_under_any_split(
    events: list[tuple[str, str]], cuts: list[int], as_bytes: bool
) -> None:
    wire = "".join(encode_sse(data, name or None) for name, data in events)
    parser = SSEParser()
    got: list[SSEEvent] = []
    if as_bytes:
        raw = wire.encode("utf-8")
        points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
        for a, b in itertools.pairwise(points):
            got += parser.feed_bytes(raw[a:b])
    else:
        points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
        for a, b in itertools.pairwise(points):
            got += parser.feed(wire[a:b])
    expected = [(name or "message", data) for name, data in events]
    assert [tuple(e) for e in got] == expected
    assert not parser.pending


_line = st.one_of(
    st.builds(lambda v: f"data:{v}", _names), st.builds(lambda v: f"data: {v}", _names),
    st.just("data"), st.builds(lambda v: f"event: {v}", _names),
    st.builds(lambda v: f"id: {v}", _names), st.just("retry: 250"), st.just(": comment"),
    st.just(""), st.just("\ufeffdata: x"), st.builds(lambda v: f"other:{v}", _names))


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_line, max_size=14), cuts=st.lists(st.integers(0, 10_000), max_size=6),
       limit=st.sampled_from([None, 8, 30]))
def test_pieces_of_whole_events_parse_as_one_character_at_a_time(
    lines: list[str], cuts: list[int], limit: int | None
) -> None:
    """Pieces holding whole events (taken a block at a time when the parser is between
    events) give the same events, last id, retry, pending state and size refusals as the
    line-by-line reading of the same text fed one character at a time."""
    wire = "".join(line + "\n" for line in lines)
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})

    def read(pieces: list[str]) -> tuple[object, ...]:
        parser = SSEParser(max_event_chars=limit)
        got: list[SSEEvent] = []
        try:
            for piece in pieces:
                got += parser.feed(piece)
        except ValueError:
            return ("too large",)
        return (got, parser.last_event_id, parser.retry, parser.pending)

    assert read([wire[a:b] for a, b in itertools.pairwise(points)]) == read(list(wire))
