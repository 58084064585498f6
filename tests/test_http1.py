"""The lean HTTP/1.1 transport (`router/dispatch/http1.py`) against real sockets on 127.0.0.1.

Each test runs a raw asyncio server that answers with exactly the bytes the test scripts
(framing, keep-alive, malformed heads, early closes, silence), and counts the connections it
accepted, so reuse is observed from the server's side."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.dispatch.http1 import Http1Transport, LeanClient, body_pieces
from router.dispatch.pool import ClientPool

Reply = Callable[[bytes], bytes | None]  # request head+body → raw answer (None: close)
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"


class Server:
    """Reads one request at a time (head, then Content-Length bytes) and writes `reply(req)`;
    `None` closes the connection, `b""` answers nothing (the client times out)."""

    def __init__(self, reply: Reply, tls: ssl.SSLContext | None = None) -> None:
        self.reply = reply
        self.tls = tls
        self.connections = 0
        self.closed_by_client = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for w in self.writers:
            w.close()
        self.server.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1/chat?x=1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                answer = self.reply(head + body)
                if answer is None:
                    writer.close()
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_by_client += 1
            writer.close()


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def client(**kw: Any) -> LeanClient:
    return LeanClient(Http1Transport(ssl_context=ssl.create_default_context(), **kw))


async def post(c: httpx.AsyncClient, url: str, timeout: float = 5.0) -> httpx.Response:
    return await c.post(url, content=b'{"q":1}', headers={"authorization": "Bearer k"},
                        timeout=timeout)


def test_keeps_one_connection_alive_across_calls_and_sends_the_request_whole() -> None:
    async def go() -> None:
        async with Server(lambda _: OK) as s:
            async with client() as c:
                for _ in range(5):
                    r = await post(c, s.url)
                    assert r.status_code == 200 and r.json() == {"ok": True}
            assert s.connections == 1
            first = s.requests[0]
            assert first.startswith(b"POST /v1/chat?x=1 HTTP/1.1\r\n")
            assert b"\r\nhost: 127.0.0.1:" in first.lower()
            assert b"\r\nauthorization: Bearer k\r\n" in first
            assert first.endswith(b'\r\n\r\n{"q":1}')
    run(go())


@pytest.mark.parametrize(("body", "data"), [
    (b"4;ext=1\r\n{\"a\"\r\n5\r\n:\"bc\"\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n",
     {"a": "bc"}),
    (b"4\r\n{\"a\"\r\nA\r\n:\"bcdefgh\"\r\n1\r\n}\r\n0\r\n\r\n", {"a": "bcdefgh"}),
    (b"4 \r\n{\"a\"\r\n 5;e\r\n:\"bc\"\r\n1\r\n}\r\n0\r\n\r\n", {"a": "bc"}),
], ids=["extensions-and-trailers", "every-chunk-whole-in-the-buffer", "sizes-with-spaces"])
def test_chunked_body_then_reuse(body: bytes, data: dict[str, str]) -> None:
    """A chunked body reads back whole and its connection goes back to the pool: with chunk
    extensions and trailers (read step by step), with every chunk, the last one too, already
    buffered when read (taken at once), and with spaces around chunk sizes (which the
    at-once path leaves to the step-by-step one)."""
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body

    async def go() -> None:
        async with Server(lambda _: chunked) as s:
            async with client() as c:
                for _ in range(3):
                    r = await post(c, s.url)
                    assert r.json() == data
            assert s.connections == 1
    run(go())


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


async def drip(pieces: list[bytes], pause_s: float, then_close: bool = False
               ) -> tuple[asyncio.Server, str]:
    """A server writing its answer in `pieces`, `pause_s` apart (each its own segment)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(pause_s)
        if then_close:
            writer.close()
        else:
            await asyncio.sleep(5)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat"


def test_chunked_framing_split_at_every_boundary_is_read_whole() -> None:
    """Size lines, chunk data and their CRLFs arriving in separate segments (a read that
    finds its line or CRLF already buffered sets no timer; one that must wait does)."""
    pieces = [CHUNKED_HEAD, b"4", b";x=1\r", b"\n{\"a\"", b"\r", b"\n5\r\n:\"bc\"\r\n1\r\n}",
              b"\r\n0\r\n", b"\r\n"]

    async def go() -> None:
        server, url = await drip(pieces, 0.01)
        async with server, client() as c:
            r = await post(c, url)
            assert r.json() == {"a": "bc"}
    run(go())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8),
       st.lists(st.booleans(), min_size=8, max_size=8), st.data())
def test_any_chunked_body_in_any_segments_is_read_whole(parts: list[bytes], upper: list[bool],
                                                        data: st.DataObject) -> None:
    """Chunks whole in the buffer are taken at once, the rest step by step: for any chunk
    sizes (hex in either case, some with extensions) cut into any segments, the body reads
    back whole."""
    framed = b""
    for i, part in enumerate(parts):
        size = f"{len(part):X}" if upper[i] else f"{len(part):x}"
        ext = ";n=v" if i % 3 == 2 else ""
        framed += f"{size}{ext}\r\n".encode() + part + b"\r\n"
    framed += b"0\r\n\r\n"
    answer = CHUNKED_HEAD + framed
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(answer) - 1), max_size=4))))
    pieces = [answer[a:b] for a, b in zip([0, *cuts], [*cuts, len(answer)], strict=True)]

    async def go() -> None:
        server, url = await drip(pieces, 0.002)
        async with server, client() as c, c.stream("POST", url, content=b"{}") as r:
            assert await r.aread() == b"".join(parts)
    run(go())


@pytest.mark.parametrize("stalled_in", [b"4", b"4\r\n{}[]", b"4\r\n{}[]\r"],
                         ids=["size-line", "before-crlf", "mid-crlf"])
def test_a_stall_inside_chunk_framing_is_a_read_timeout(stalled_in: bytes) -> None:
    async def go() -> None:
        server, url = await drip([CHUNKED_HEAD + stalled_in], 0.0)
        async with server, client() as c, c.stream("POST", url, content=b"{}",
                                                   timeout=0.2) as r:
            with pytest.raises(httpx.ReadTimeout):
                await r.aread()
    run(go())


def test_a_body_until_close_is_read_whole_and_the_connection_not_reused() -> None:
    async def go() -> None:
        def reply(_: bytes) -> bytes:
            return b"HTTP/1.1 200 OK\r\n\r\n{\"x\":2}"

        async with Server(reply) as s:
            async with client() as c:
                for _ in range(2):
                    async with c.stream("POST", s.url, content=b"{}") as r:
                        # the server keeps the socket open; close it after the bytes are out
                        await asyncio.sleep(0.05)
                        for w in s.writers:
                            w.close()
                        assert await r.aread() == b'{"x":2}'
            assert s.connections == 2
    run(go())


def test_connection_close_and_http_1_0_are_not_kept() -> None:
    answers = [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
               b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"]

    async def go() -> None:
        for answer in answers:
            async with Server(lambda _, a=answer: a) as s:  # type: ignore[misc]
                async with client() as c:
                    for _ in range(2):
                        assert (await post(c, s.url)).json() == {}
                assert s.connections == 2, answer
    run(go())


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async def go() -> None:
        async with Server(lambda _: OK) as s:
            async with client() as c:
                assert (await post(c, s.url)).status_code == 200
                for w in s.writers:
                    w.close()
                await asyncio.sleep(0.05)
                assert (await post(c, s.url)).status_code == 200
            assert s.connections == 2
    run(go())


def test_idle_connections_expire_by_the_injected_clock() -> None:
    now = [0.0]

    async def go() -> None:
        async with Server(lambda _: OK) as s:
            t = Http1Transport(ssl_context=ssl.create_default_context(), keepalive_expiry=5.0,
                               clock=lambda: now[0])
            async with LeanClient(t) as c:
                await post(c, s.url)
                now[0] = 4.9
                await post(c, s.url)
                assert s.connections == 1
                now[0] = 10.0
                await post(c, s.url)
                assert s.connections == 2
    run(go())


def test_interim_1xx_answers_are_skipped() -> None:
    async def go() -> None:
        interim = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
        async with Server(lambda _: interim) as s, client() as c:
            assert (await post(c, s.url)).json() == {"ok": True}
    run(go())


def test_gzip_is_decoded_by_httpx() -> None:
    import gzip

    packed = gzip.compress(b'{"z":1}')
    answer = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
              + str(len(packed)).encode() + b"\r\n\r\n" + packed)

    async def go() -> None:
        async with Server(lambda _: answer) as s, client() as c:
            assert (await post(c, s.url)).json() == {"z": 1}
    run(go())


def test_chunks_that_arrived_together_are_one_piece_and_gzip_is_still_decoded() -> None:
    """`body_pieces`: a provider's events, one chunk each, sent in one packet come up as one
    piece (straight from the reader), the connection is reused; a gzip body goes through
    httpx's decoder."""
    import gzip

    events = [b'data: {"n": %d}\n\n' % i for i in range(5)]
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n")
    packed = gzip.compress(b"".join(events))
    zipped = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
              + str(len(packed)).encode() + b"\r\n\r\n" + packed)
    answers = iter([chunked, chunked, zipped])

    async def go() -> list[list[bytes]]:
        async with Server(lambda _: next(answers)) as s, client() as c:
            got = []
            for _ in range(3):
                async with c.stream("POST", s.url, content=b"{}") as r:
                    got.append([p async for p in body_pieces(r)])
            assert s.connections == 1
            return got

    whole = b"".join(events)
    assert run(go()) == [[whole], [whole], [whole]]


@pytest.mark.parametrize("answer, words", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"short\":1}", "before the body's end"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", "chunk end"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\nabc", "mid-chunk"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "status line"),
    (b"SMTP 200 OK\r\n\r\n", "status line"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line"),
    (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", "header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "closed the connection"),
])
def test_malformed_or_broken_answers_are_protocol_errors(answer: bytes, words: str) -> None:
    async def go() -> None:
        def reply(_: bytes) -> bytes | None:
            return answer

        async with Server(reply) as s, client() as c:
            # the server closes after its answer, as a broken server would
            task = asyncio.ensure_future(post(c, s.url))
            await asyncio.sleep(0.1)
            for w in s.writers:
                w.close()
            with pytest.raises(httpx.RemoteProtocolError, match=words):
                await task
    run(go())


def test_a_head_over_the_bound_is_refused_without_buffering_it() -> None:
    huge = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"

    async def go() -> None:
        async with Server(lambda _: huge) as s, client(max_head_bytes=16 * 1024) as c:
            with pytest.raises(httpx.RemoteProtocolError, match="too long"):
                await post(c, s.url)
    run(go())


def test_a_huge_declared_chunk_is_read_piecewise() -> None:
    """A chunk declaring 1 GiB arrives in pieces of at most 64 KiB, so the caller's bound
    stops it (here after 1 MiB) without the transport buffering the chunk."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\n"

    async def go() -> None:
        async with Server(lambda _: head + b"x" * 2_000_000) as s, client() as c:
            async with c.stream("POST", s.url, content=b"{}") as r:
                got, biggest = 0, 0
                async for piece in r.aiter_raw():
                    got += len(piece)
                    biggest = max(biggest, len(piece))
                    if got > 1_000_000:
                        break
            assert biggest <= 64 * 1024
    run(go())


def test_read_timeout_and_the_connection_is_not_reused() -> None:
    async def go() -> None:
        calls = [0]

        def reply(_: bytes) -> bytes:
            calls[0] += 1
            return b"" if calls[0] == 1 else OK

        async with Server(reply) as s:
            async with client() as c:
                with pytest.raises(httpx.ReadTimeout):
                    await post(c, s.url, timeout=0.2)
                assert (await post(c, s.url)).status_code == 200
            assert s.connections == 2
    run(go())


def test_reset_mid_body_is_a_read_or_protocol_error() -> None:
    async def go() -> None:
        def reply(_: bytes) -> bytes:
            return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"par"

        async with Server(reply) as s, client() as c, \
                c.stream("POST", s.url, content=b"{}") as r:
            await asyncio.sleep(0.05)
            for w in s.writers:
                w.transport.abort()  # RST, not FIN
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await r.aread()
    run(go())


def test_connect_error_names_the_origin_only() -> None:
    async def go() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        async with client() as c:
            with pytest.raises(httpx.ConnectError, match=f"127.0.0.1:{port}"):
                await post(c, f"http://127.0.0.1:{port}/v1")
    run(go())


def test_header_injection_is_refused_before_anything_is_sent() -> None:
    async def go() -> None:
        async with Server(lambda _: OK) as s:
            async with client() as c:
                with pytest.raises(httpx.LocalProtocolError, match="authorization"):
                    await c.post(s.url, content=b"{}",
                                 headers={"authorization": "Bearer k\r\nX-Evil: 1"})
            assert s.requests == []
    run(go())


def test_the_pool_bounds_connections_in_use_and_times_out_waiting() -> None:
    async def go() -> None:
        release = asyncio.Event()

        async with Server(lambda _: OK) as s:
            async with client(max_connections=2) as c:
                streams = [c.stream("POST", s.url, content=b"{}") for _ in range(2)]
                held = [await st.__aenter__() for st in streams]
                with pytest.raises(httpx.PoolTimeout):
                    await c.post(s.url, content=b"{}", timeout=httpx.Timeout(5.0, pool=0.1))
                for st, r in zip(streams, held, strict=True):
                    await r.aread()
                    await st.__aexit__(None, None, None)
                release.set()
                many = await asyncio.gather(*(post(c, s.url) for _ in range(20)))
                assert all(r.status_code == 200 for r in many)
                # The bound is across origins: another server waits for the same two slots.
                async with Server(lambda _: OK) as other:
                    streams = [c.stream("POST", s.url, content=b"{}") for _ in range(2)]
                    held = [await st.__aenter__() for st in streams]
                    with pytest.raises(httpx.PoolTimeout):
                        await c.post(other.url, content=b"{}",
                                     timeout=httpx.Timeout(5.0, pool=0.1))
                    for st, r in zip(streams, held, strict=True):
                        await r.aread()
                        await st.__aexit__(None, None, None)
                    assert (await post(c, other.url)).status_code == 200
            assert s.connections == 2
    run(go())


def test_unsupported_scheme() -> None:
    async def go() -> None:
        async with client() as c:
            with pytest.raises(httpx.UnsupportedProtocol):
                await c.get("ftp://127.0.0.1/x")
    run(go())


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_verifies_the_server_and_keeps_the_connection() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = _self_signed(Path(tmp))
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        trusting = ssl.create_default_context(cafile=str(cert))

        async def go() -> None:
            async with Server(lambda _: OK, tls=server_ctx) as s:
                async with LeanClient(Http1Transport(ssl_context=trusting)) as c:
                    for _ in range(3):
                        assert (await post(c, s.url)).json() == {"ok": True}
                assert s.connections == 1
                # A client that does not trust the certificate refuses the server.
                async with client() as c:
                    with pytest.raises(httpx.ConnectError, match="SSL"):
                        await post(c, s.url)
        run(go())


def test_the_router_pool_uses_the_lean_client_unless_proxies_are_trusted() -> None:
    async def go() -> None:
        lean = ClientPool(100, trust_env=False)
        proxied = ClientPool(100, trust_env=True)
        try:
            assert [type(c) for c in lean.clients] == [LeanClient]
            assert all(type(c) is httpx.AsyncClient for c in proxied.clients)
        finally:
            await lean.aclose()
            await proxied.aclose()
    run(go())


def test_request_for_adds_the_defaults_the_adapter_did_not_set() -> None:
    async def go() -> None:
        async with Server(lambda _: OK) as s, client() as c:
            for headers in ({"authorization": "Bearer k"},
                            {"User-Agent": "mine/1", "Accept": "application/json"}):
                request = c.request_for("POST", s.url, b"{}", headers, 5.0)
                response = await c.send(request)
                assert response.json() == {"ok": True}
        first, second = (r.lower() for r in s.requests)
        assert b"\r\naccept: */*\r\n" in first
        assert b"\r\naccept-encoding: gzip, deflate\r\n" in first
        assert b"\r\nuser-agent: unhardcoded\r\n" in first
        assert b"\r\ncontent-length: 2\r\n" in first
        assert b"\r\nuser-agent: mine/1\r\n" in second and b"unhardcoded" not in second
        assert b"\r\naccept: application/json\r\n" in second and b"*/*" not in second
    run(go())


def test_idle_connections_of_an_origin_no_longer_called_are_closed() -> None:
    """Expired idle connections are swept from every origin, not only the one being called."""
    now = [0.0]

    async def go() -> None:
        async with Server(lambda _: OK) as quiet, Server(lambda _: OK) as busy:
            t = Http1Transport(ssl_context=ssl.create_default_context(), keepalive_expiry=5.0,
                               clock=lambda: now[0])
            async with LeanClient(t) as c:
                await post(c, quiet.url)
                now[0] = 6.0
                assert quiet.closed_by_client == 0
                await post(c, busy.url)  # a release after the expiry sweeps every origin
                for _ in range(100):
                    if quiet.closed_by_client:
                        break
                    await asyncio.sleep(0.01)
                assert quiet.closed_by_client == 1 and busy.closed_by_client == 0
    run(go())


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_the_read_timeout_is_per_read_not_per_response() -> None:
    """One timer keeps a response's read timeout (`ReadClock`), but it still bounds each read:
    a body whose pieces come 0.08 s apart reads whole under a 0.2 s timeout though it takes
    far longer than 0.2 s in all."""
    parts = [b"p%d" % i for i in range(10)]

    async def go() -> None:
        loop = asyncio.get_running_loop()
        server, url = await drip([CHUNKED_HEAD] + [_chunk(p) for p in parts] + [b"0\r\n\r\n"],
                                 0.08)
        async with server, client() as c, c.stream("POST", url, content=b"{}",
                                                   timeout=0.2) as r:
            t0 = loop.time()
            assert await r.aread() == b"".join(parts)
            assert loop.time() - t0 > 0.5
    run(go())


def test_a_stall_after_a_stream_of_pieces_times_out_from_when_the_stall_began() -> None:
    """Pieces keep coming for 0.4 s, then none: the read waiting for the next one times out
    once it has waited the timeout (not before), though the clock's timer was armed at the
    response's first read."""
    async def go() -> None:
        loop = asyncio.get_running_loop()
        server, url = await drip([CHUNKED_HEAD] + [_chunk(b"x")] * 8, 0.05)
        last = 0.0
        async with server, client() as c, c.stream("POST", url, content=b"{}",
                                                   timeout=0.2) as r:
            with pytest.raises(httpx.ReadTimeout):
                async for _ in r.aiter_raw():
                    last = loop.time()
            assert loop.time() - last >= 0.2 - 0.01
    run(go())


def test_a_slow_reader_is_not_timed_only_a_waiting_read_is() -> None:
    """The time a caller spends between reads is not a read's wait: a caller pausing 0.3 s
    after each piece under a 0.2 s timeout reads the whole body (the rest arrived meanwhile)."""
    parts = [b"a" * 10, b"b" * 10, b"c" * 10]

    async def go() -> None:
        server, url = await drip([CHUNKED_HEAD] + [_chunk(p) for p in parts] + [b"0\r\n\r\n"],
                                 0.01)
        async with server, client() as c, c.stream("POST", url, content=b"{}",
                                                   timeout=0.2) as r:
            got = []
            async for piece in r.aiter_raw():
                got.append(piece)
                await asyncio.sleep(0.3)
            assert b"".join(got) == b"".join(parts)
    run(go())


def test_a_read_cancelled_from_outside_stays_cancelled() -> None:
    """A waiting read that its caller cancels (a client that left) raises CancelledError, not
    ReadTimeout; and the same transport serves the next request afterwards."""
    async def go() -> None:
        calls = [0]

        def reply(_: bytes) -> bytes:
            calls[0] += 1
            return b"" if calls[0] == 1 else OK

        async with Server(reply) as s, client() as c:
            task = asyncio.ensure_future(post(c, s.url, timeout=5.0))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await post(c, s.url, timeout=0.5)).status_code == 200
    run(go())


@pytest.mark.parametrize(("method", "url", "body", "headers"), [
    ("POST", "http://127.0.0.1:8080/v1/chat?x=1", b'{"q":1}',
     {"authorization": "Bearer k", "content-type": "application/json"}),
    ("POST", "https://api.example.com/v1/chat", b"", {"x-api-key": "k"}),
    ("POST", "https://api.example.com/v1/chat", None, {}),
    ("GET", "https://api.example.com:8443/v1/models", None, {"Accept": "application/json"}),
    ("POST", "https://bedrock.example.com/model/m/invoke", b"{}",
     {"Host": "bedrock.example.com", "User-Agent": "mine", "Content-Length": "2"}),
    ("PUT", "http://[::1]:9000/x", b"abc", {"Accept-Encoding": "identity"}),
])
def test_request_for_builds_the_request_httpx_would(method: str, url: str, body: bytes | None,
                                                    headers: dict[str, str]) -> None:
    """`LeanClient.request_for` adds Host, the default headers and Content-Length itself (and
    hands httpx the body as a stream): the same headers, in the same order, and the same
    content as httpx's own `Request(content=...)` with those defaults."""
    from router.dispatch.http1 import DEFAULT_HEADERS

    async def go() -> None:
        async with client() as c:
            ours = c.request_for(method, url, body, headers, 5.0)
            given = {k.lower() for k in headers}
            theirs = httpx.Request(method, url, content=body, headers={
                **headers, **{k: v for k, v in DEFAULT_HEADERS if k not in given}})
            assert ours.headers.raw == theirs.headers.raw
            assert ours.content == theirs.content == (body or b"")
            assert ours.method == method and ours.url == theirs.url
            assert ours.extensions["timeout"]["read"] == 5.0
    run(go())


def test_provider_json_and_error_bodies_read_whole_through_the_lean_client() -> None:
    """`post_json` and an error answer's body (`http.error_content`), read straight from the
    transport (`body_pieces`): a plain, a chunked and a gzip answer parse to the same JSON, a
    429's gzip body is decoded into the failure, and each read ends its body (the one
    connection is reused for every call)."""
    import gzip

    from router.dispatch.failures import UpstreamFailure
    from router.dispatch.providers.http import post_json

    doc = b'{"id":"x","n":[1,2,3]}'
    packed = gzip.compress(doc)
    error = gzip.compress(b'{"error":{"message":"slow down"}}')
    answers = iter([
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(doc), doc),
        CHUNKED_HEAD + b"5\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (doc[:5], len(doc) - 5, doc[5:]),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(packed), packed),
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(error), error),
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(doc), doc),
    ])
    now = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)

    async def go() -> tuple[list[Any], UpstreamFailure, int]:
        async with Server(lambda _: next(answers)) as s, client() as c:
            got = [await post_json(c, s.url, b"{}", {}, 5.0, "p", now) for _ in range(3)]
            with pytest.raises(UpstreamFailure) as failed:
                await post_json(c, s.url, b"{}", {}, 5.0, "p", now)
            got.append(await post_json(c, s.url, b"{}", {}, 5.0, "p", now))
            return got, failed.value, s.connections

    got, failure, connections = run(go())
    assert got == [{"id": "x", "n": [1, 2, 3]}] * 4
    assert (failure.status, failure.kind, failure.retry_after_s) == (429, "rate_limit", 2.0)
    assert failure.body == {"error": {"message": "slow down"}}
    assert connections == 1


def test_close_response_gives_the_connection_back_once_and_closes_other_responses() -> None:
    """`close_response`: a whole lean response closes (httpx's `is_closed`) and its connection
    is reused, twice closing is harmless; a response half read closes its connection; a
    response of another transport is closed by httpx."""
    from router.dispatch.http1 import close_response

    async def go() -> tuple[int, bool]:
        async with Server(lambda _: OK) as s, client() as c:
            for _ in range(3):
                r = await c.send(c.build_request("POST", s.url, content=b"{}"), stream=True)
                assert [p async for p in body_pieces(r)] == [b'{"ok":true}']
                await close_response(r)
                await close_response(r)
                assert r.is_closed
            half = await c.send(c.build_request("POST", s.url, content=b"{}"), stream=True)
            await close_response(half)  # its body unread: the connection is not kept
            r = await c.post(s.url, content=b"{}")
            assert r.json() == {"ok": True}
            other = httpx.AsyncClient(transport=httpx.MockTransport(
                lambda _: httpx.Response(200, content=b"x")))
            async with other:
                o = await other.send(other.build_request("GET", "http://x/"), stream=True)
                await close_response(o)
                return s.connections, o.is_closed

    assert run(go()) == (2, True)


def test_a_body_is_read_to_end_once_its_last_chunk_is_taken() -> None:
    """`read_to_end`: true as soon as the last chunk came in the same read as the data before
    it (before the reader asks for more: a drain then waits on nothing), false while the
    terminator is still to come; either way the connection is reused."""
    from router.dispatch.http1 import close_response, read_to_end

    whole = CHUNKED_HEAD + b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"

    async def go() -> tuple[list[bool], int]:
        seen: list[bool] = []
        async with Server(lambda _: whole) as s, client() as c:
            for _ in range(2):
                r = await c.send(c.build_request("POST", s.url, content=b"{}"), stream=True)
                pieces = body_pieces(r)
                assert await anext(pieces) == b"abcde"
                seen.append(read_to_end(r))
                assert [p async for p in pieces] == []
                await close_response(r)
            return seen, s.connections

    assert run(go()) == ([True, True], 1)

    async def later() -> bool:
        server, url = await drip([CHUNKED_HEAD + b"2\r\nab\r\n", b"0\r\n\r\n"], 0.05)
        async with server, client() as c:
            r = await c.send(c.build_request("POST", url, content=b"{}"), stream=True)
            pieces = body_pieces(r)
            assert await anext(pieces) == b"ab"
            before = read_to_end(r)
            assert [p async for p in pieces] == []
            assert read_to_end(r)
            await close_response(r)
            return before

    assert run(later()) is False
