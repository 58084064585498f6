"""The service as users run it: `python -m router.cli serve …` as a subprocess on 127.0.0.1,
pointed at loopback fake providers, with a real SQLite records file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai

from router.records import open_store
from router.records.store import StoredRecord
from tests.dispatch_support import ANTHROPIC_KEY, OPENAI_KEY, catalog, environ, policy
from tests.fakes import FakeProvider

START_TIMEOUT_S = 90.0
PROVIDER_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MISTRAL_API_KEY",
                      "AWS_ACCESS_KEY_ID", "AWS_BEARER_TOKEN_BEDROCK", "GEMINI_API_KEY",
                      "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "UNHARDCODED_RECORDS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    records: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, api_key: str = "unused", **kw: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0,
                             timeout=30.0, **kw)

    def async_client(self, api_key: str = "unused") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0,
                                  timeout=30.0)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def stored(self, trace_id: str, wait_s: float = 10.0) -> StoredRecord:
        """The record of `trace_id`, once the service's writer has committed it."""
        deadline = time.monotonic() + wait_s
        while True:
            store = open_store(self.records)
            try:
                found = store.get(trace_id)
            finally:
                store.close()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"trace {trace_id} never reached {self.records}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout_s)


@contextmanager
def fake_providers() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    """The loopback OpenAI and Anthropic fakes the service's catalog points at."""
    with FakeProvider(api_key=OPENAI_KEY, models=["cheap-2026", "mid"]) as oa, \
            FakeProvider(api_key=ANTHROPIC_KEY, models=["claude-x-20260101"],
                         style="anthropic") as an:
        yield oa, an


def service_env(openai_url: str, anthropic_url: str,
                extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env.update(environ(openai_url, anthropic_url))
    env.update(extra or {})
    return env


def write_files(root: Path, policies: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """The dispatch tests' catalog and a policies directory (`cheap`: cheapest first)."""
    root.mkdir(parents=True, exist_ok=True)
    cat = root / "catalog.json"
    cat.write_text(json.dumps(catalog().to_json()))
    pdir = root / "policies"
    pdir.mkdir(exist_ok=True)
    for name, term in (policies if policies is not None else {"cheap": policy()}).items():
        (pdir / f"{name}.json").write_text(json.dumps(term))
    return {"catalog": cat, "policies": pdir, "records": root / "records.sqlite3"}


def start(root: Path, env: Mapping[str, str], args: Sequence[str] = (),
          files: Mapping[str, Path] | None = None, wait: bool = True) -> Served:
    files = files or write_files(root)
    port = free_port()
    log = root / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "router.cli", "serve", "--port", str(port),
           "--catalog", str(files["catalog"]), "--policies", str(files["policies"]),
           "--records", str(files["records"]), "--log-level", "warning", *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                cwd=root)
    served = Served(proc, port, log, files["records"])
    if wait:
        wait_ready(served)
    return served


def wait_ready(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            raise AssertionError(f"serve exited {served.proc.returncode}:\n{served.output()}")
        try:
            if httpx.get(served.url + "/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    served.stop(signal.SIGKILL)
    raise AssertionError(f"serve never became ready:\n{served.output()}")


@contextmanager
def serving(root: Path, env: Mapping[str, str], args: Sequence[str] = (),
            files: Mapping[str, Path] | None = None) -> Iterator[Served]:
    served = start(root, env, args, files)
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            served.proc.send_signal(signal.SIGTERM)
            try:
                served.proc.wait(30)
            except subprocess.TimeoutExpired:
                served.proc.kill()
                served.proc.wait()


def raw_exchange(port: int, *parts: bytes, pause_s: float = 0.05) -> bytes:
    """Send `parts` on one connection, a pause between them, and read until the server
    closes; a reset instead of an orderly close fails the test."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for part in parts:
            sock.sendall(part)
            time.sleep(pause_s)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    return got
