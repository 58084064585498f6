"""The service's life: caller keys, refused start-ups, SIGHUP reloads, SIGTERM drains, a client
that leaves mid-stream, several workers, and a bounded load — all against the real server."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from router.cli.main import main
from router.records import Query, open_store
from tests.dispatch_support import policy
from tests.fakes import FakeProvider, delay, ok
from tests.service_support import (
    Served,
    fake_providers,
    raw_exchange,
    service_env,
    serving,
    start,
    write_files,
)

HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    with fake_providers() as both:
        yield both


@pytest.fixture()
def env(providers: tuple[FakeProvider, FakeProvider]) -> dict[str, str]:
    oa, an = providers
    return service_env(oa.base_url, an.base_url)


def new_key(keys: Path, key_id: str, *extra: str,
            capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["keys", "new", "--file", str(keys), "--id", key_id, *extra]) == 0
    return capsys.readouterr().out.strip()


def test_caller_keys(tmp_path: Path, env: dict[str, str],
                     capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys.json"
    support = new_key(keys, "support-1", "--team", "support", "--label", "pii", capsys=capsys)
    limited = new_key(keys, "other-1", "--policy", "other", capsys=capsys)
    files = write_files(tmp_path, {"cheap": policy(), "other": policy(cascade=0)})
    with serving(tmp_path, env, ["--keys", str(keys)], files) as s:
        with pytest.raises(openai.AuthenticationError):
            s.client().chat.completions.create(model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
        with pytest.raises(openai.AuthenticationError):
            s.client(support + "x").chat.completions.create(model="policy:cheap",
                                                            messages=HELLO)  # type: ignore[arg-type]
        with pytest.raises(openai.PermissionDeniedError) as denied:
            s.client(limited).chat.completions.create(model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
        assert "may not use the policy `cheap`" in denied.value.message
        with pytest.raises(openai.PermissionDeniedError):
            s.client(limited).chat.completions.create(model="mid", messages=HELLO)  # type: ignore[arg-type]
        assert [m.id for m in s.client(limited).models.list()] == ["policy:other"]
        assert s.client(limited).chat.completions.create(
            model="policy:other", messages=HELLO).choices  # type: ignore[arg-type]
        raw = s.client(support).chat.completions.with_raw_response.create(
            model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
        stored = s.stored(raw.headers["x-unhardcoded-trace-id"])
        assert stored.body["caller"] == {"key_id": "support-1", "team": "support",
                                         "labels": ["pii"]}
        assert stored.body["request_features"]["labels"] == ["pii"]
        with httpx.Client(base_url=s.url) as http:  # the limited key sees its policy's traces
            mine = http.get("/v1/traces", headers={"authorization": f"Bearer {limited}"})
            assert {t["policy_name"] for t in mine.json()["data"]} == {"other"}
        log = s.output()
    assert support not in log and limited not in log


def test_sighup_reloads_the_keys_file(tmp_path: Path, env: dict[str, str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys.json"
    first = new_key(keys, "first", capsys=capsys)
    with serving(tmp_path, env, ["--keys", str(keys)]) as s:
        second = new_key(keys, "second", capsys=capsys)
        assert main(["keys", "revoke", "--file", str(keys), "--id", "first"]) == 0
        s.proc.send_signal(signal.SIGHUP)

        def status(key: str) -> int:
            return httpx.get(s.url + "/v1/models",
                             headers={"authorization": f"Bearer {key}"}).status_code

        wait_until(lambda: status(second) == 200)
        assert status(first) == 401


def test_a_bad_policy_stops_start_up_with_every_problem(tmp_path: Path,
                                                        env: dict[str, str]) -> None:
    files = write_files(tmp_path, {"good": policy(),
                                   "bad": ["policy", ["ev_zero"], ["filter", [">=", "nope", 1]],
                                           ["rank"], ["select", ["first"]], ["mutate"],
                                           ["fallback"]]})
    (files["policies"] / "broken.json").write_text("[1, 2,")
    served = start(tmp_path, env, files=files, wait=False)
    assert served.proc.wait(60) == 2
    out = served.output()
    refused = json.loads(out[out.index("{"):])
    pointers = {p["pointer"] for p in refused["problems"]}
    assert "bad.json#/2/1/1" in pointers and "broken.json#" in pointers


def test_no_keys_means_loopback_only(tmp_path: Path, env: dict[str, str]) -> None:
    served = start(tmp_path, env, ["--host", "0.0.0.0"], wait=False)
    assert served.proc.wait(60) == 2
    assert "serve.open_without_keys" in served.output()


def test_sighup_reloads_policies_all_or_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    with serving(tmp_path, env) as s:
        policies = tmp_path / "policies"
        (policies / "second.json").write_text(json.dumps(policy(cascade=0)))
        s.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "second" in httpx.get(s.url + "/readyz").json()["policies"])
        assert s.client().chat.completions.create(model="policy:second", messages=HELLO).choices  # type: ignore[arg-type]
        (policies / "broken.json").write_text('["policy", ')
        s.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in s.output())
        assert httpx.get(s.url + "/readyz").json()["policies"] == ["cheap", "second"]
        assert s.client().chat.completions.create(model="policy:second", messages=HELLO).choices  # type: ignore[arg-type]


def test_sigterm_finishes_in_flight_requests_and_flushes_records(
        tmp_path: Path, env: dict[str, str], providers: tuple[FakeProvider, FakeProvider]) -> None:
    oa, _ = providers
    oa.script_for("cheap-2026", delay(1.5))
    served = start(tmp_path, env)
    before = len(oa.requests)
    got: dict[str, Any] = {}

    def call() -> None:
        raw = served.client().chat.completions.with_raw_response.create(
            model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
        got["status"], got["trace"] = raw.status_code, raw.headers["x-unhardcoded-trace-id"]

    caller = threading.Thread(target=call)
    caller.start()
    wait_until(lambda: len(oa.requests) > before)  # the call is in flight at the provider
    assert served.stop(signal.SIGTERM) == 0
    caller.join(10)
    assert got["status"] == 200
    store = open_store(served.records)
    try:
        found = store.get(got["trace"])
    finally:
        store.close()
    assert found is not None and found.outcome == "ok"


def test_a_client_leaving_mid_stream_closes_the_provider_stream(
        tmp_path: Path, env: dict[str, str], providers: tuple[FakeProvider, FakeProvider]) -> None:
    oa, _ = providers
    oa.script_for("cheap-2026", ok("word " * 100, chunks=100, chunk_delay=0.05))
    with serving(tmp_path, env) as s:
        t0 = time.monotonic()
        with s.http() as http, http.stream(
                "POST", "/v1/chat/completions",
                json={"model": "policy:cheap", "messages": HELLO, "stream": True}) as r:
            trace_id = r.headers["x-unhardcoded-trace-id"]
            lines = r.iter_lines()
            for _ in range(3):
                next(lines)
        stored = s.stored(trace_id)
        assert time.monotonic() - t0 < 4.0  # the whole stream would take 5 s
        assert stored.outcome == "cancelled"
        assert stored.body["dispatch"]["attempts"][-1]["outcome"] == "cancelled"


def test_sigterm_past_the_deadline_ends_a_stream_and_records_it(
        tmp_path: Path, env: dict[str, str], providers: tuple[FakeProvider, FakeProvider]) -> None:
    """A stream still running when the graceful deadline passes is ended by the server: the
    provider's stream is closed, the process exits 0 soon after the deadline, and the stream's
    record is written (as cancelled), not lost."""
    oa, _ = providers
    oa.script_for("cheap-2026", ok("word " * 200, chunks=200, chunk_delay=0.05))  # ~10 s
    served = start(tmp_path, env, ["--graceful", "1"])
    got: dict[str, Any] = {}

    def read() -> None:
        with served.http() as http, http.stream(
                "POST", "/v1/chat/completions",
                json={"model": "policy:cheap", "messages": HELLO, "stream": True}) as r:
            got["trace"] = r.headers["x-unhardcoded-trace-id"]
            try:
                for _ in r.iter_lines():
                    pass
            except httpx.HTTPError:
                pass  # the server cut the stream

    reader = threading.Thread(target=read)
    reader.start()
    wait_until(lambda: "trace" in got)
    t0 = time.monotonic()
    assert served.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 6.0  # the deadline (1 s), not the stream's ~10 s
    reader.join(10)
    assert served.stored(got["trace"]).outcome == "cancelled"


def test_two_workers_share_the_port_the_store_and_the_metrics(
        tmp_path: Path, env: dict[str, str]) -> None:
    with serving(tmp_path, env, ["--workers", "2"]) as s:
        traces = []
        for _ in range(20):
            with httpx.Client(base_url=s.url) as http:  # a new connection each time
                r = http.post("/v1/chat/completions",
                              json={"model": "policy:cheap", "messages": HELLO})
                assert r.status_code == 200
                traces.append(r.headers["x-unhardcoded-trace-id"])
        for t in traces:
            s.stored(t)
        text = httpx.get(s.url + "/metrics").text
    served = sum(x.value for f in text_string_to_metric_families(text) for x in f.samples
                 if x.name == "unhardcoded_requests_total"
                 and x.labels == {"route": "/v1/chat/completions", "status": "200"})
    assert served == 20


def test_bounded_load_no_errors_every_trace_stored(tmp_path: Path, env: dict[str, str]) -> None:
    total, concurrency = 300, 30

    async def load(s: Served) -> list[str]:
        client = s.async_client()
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> str:
            async with gate:
                raw = await client.chat.completions.with_raw_response.create(
                    model="policy:cheap", messages=HELLO, stream=i % 3 == 0)  # type: ignore[call-overload]
                if i % 3 == 0:
                    async for _ in raw.parse():
                        pass
                return str(raw.headers["x-unhardcoded-trace-id"])

        try:
            return await asyncio.gather(*(one(i) for i in range(total)))
        finally:
            await client.close()

    with serving(tmp_path, env) as s:
        traces = asyncio.run(load(s))
        s.stored(traces[-1])
    assert len(set(traces)) == total
    store = open_store(s.records)
    try:
        stored = {r.trace_id: r.outcome for r in store.iterate(Query())}
    finally:
        store.close()
    assert set(traces) <= set(stored) and {stored[t] for t in traces} == {"ok"}


def wait_until(check: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_watch_reloads_a_changed_policy(tmp_path: Path, env: dict[str, str]) -> None:
    with serving(tmp_path, env, ["--watch", "0.2"]) as s:
        (tmp_path / "policies" / "cheap.json").write_text(
            json.dumps(policy(filters=[["==", "provider", "anthropic"]])))
        wait_until(lambda: httpx.post(s.url + "/v1/route", json={
            "model": "policy:cheap", "messages": HELLO}).json()["selected"] == "anthropic/claude")


def test_oversized_headers_are_refused(served_plain: Served) -> None:
    """Every time: the refused request's small body is read and dropped before the answer, so
    the connection does not close on unread bytes (a reset that could lose the 431)."""
    for _ in range(30):
        r = httpx.post(served_plain.url + "/v1/chat/completions",
                       headers={"x-unhardcoded-policy": "x" * 40_000},
                       json={"model": "policy:cheap", "messages": HELLO})
        assert r.status_code == 431 and r.json()["error"]["code"] == "headers_too_large"
    assert httpx.get(served_plain.url + "/healthz").status_code == 200


def test_a_head_over_the_bound_is_answered_431_without_a_reset(served_plain: Served) -> None:
    """A head that arrives in pieces and passes h11's buffer (16 KiB) is refused by the
    protocol itself, not the app: still 431 in OpenAI's shape, and the connection lingers so
    that the rest of the request does not reset it before the answer is read."""
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
            b"x-filler: " + b"a" * 10_000)
    for _ in range(5):
        got = raw_exchange(served_plain.port, head, b"b" * 30_000, b"\r\n\r\nhello")
        status, _, rest = got.partition(b"\r\n")
        assert status == b"HTTP/1.1 431 Request Header Fields Too Large", got[:200]
        assert b"connection: close" in rest.lower()
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["error"]["code"] == "headers_too_large"
        assert "16384 bytes" in body["error"]["message"]
    assert httpx.get(served_plain.url + "/healthz").status_code == 200


def test_a_request_that_is_not_http_gets_400_in_openai_shape(served_plain: Served) -> None:
    got = raw_exchange(served_plain.port, b"HELLO THERE\r\n\r\n")
    status, _, rest = got.partition(b"\r\n")
    assert status == b"HTTP/1.1 400 Bad Request"
    error = json.loads(rest.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "bad_http_request" and error["type"] == "invalid_request_error"
    assert httpx.get(served_plain.url + "/healthz").status_code == 200


def test_records_in_postgresql(tmp_path: Path, env: dict[str, str]) -> None:
    import uuid

    import psycopg

    from tests.records_backends import in_schema, postgres_dsn

    dsn = postgres_dsn()
    schema = f"service_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        files = write_files(tmp_path)
        where = in_schema(dsn, schema)
        s = start(tmp_path, env, ["--records", where], files={**files})
        try:
            raw = s.client().chat.completions.with_raw_response.create(
                model="policy:cheap", messages=HELLO)  # type: ignore[arg-type]
            trace_id = raw.headers["x-unhardcoded-trace-id"]
            wait_until(lambda: httpx.get(f"{s.url}/v1/traces/{trace_id}").status_code == 200)
            got = httpx.get(f"{s.url}/v1/traces/{trace_id}").json()
            assert got["record"]["served_by"] == "openai/cheap"
        finally:
            assert s.stop() == 0
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture()
def served_plain(tmp_path: Path, env: dict[str, str]) -> Iterator[Served]:
    with serving(tmp_path, env) as s:
        yield s
