"""Derivation worker processes: the engine runs here, not in the process that decides.

Deriving in a child keeps pyDatalog's millions of short-lived objects — and the garbage
collection they cause — out of the deciding process, and lets two derivations use two cores.
The child is started as `python -P -m router.engine.worker_main` (never by re-running the
caller's main module, so scripts need no `if __name__ == "__main__"` guard) and speaks
length-prefixed pickle frames over its stdin/stdout: a request is (policy, catalog, ruleset), a
reply is ("ok", Derivation) or ("error", message). Only this package's own objects cross the pipe.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from router.engine.derive import derive

_HEADER = struct.Struct(">Q")


def _write(stream: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("derivation worker closed its pipe")
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("derivation worker closed its pipe mid-reply")
    return pickle.loads(data)


class WorkerProcess:
    """One child process; one derivation at a time."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])  # the folder that holds `router`
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        # -P: the current directory is not put on sys.path, so a `queue.py` (or a `router/`)
        # where the user runs us is never imported by the worker.
        self.proc = subprocess.Popen([sys.executable, "-P", "-m", "router.engine.worker_main"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def derive(self, args: tuple[Any, ...]) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        _write(self.proc.stdin, args)
        status, value = _read(self.proc.stdout)
        if status != "ok":
            raise RuntimeError(f"derivation failed in the worker: {value}")
        return value

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class WorkerPool:
    """`size` worker processes (started on first use) behind a Future-returning `submit`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: queue.Queue[WorkerProcess | None] = queue.Queue()
        for _ in range(size):
            self._idle.put(None)  # a slot; its process starts when first needed
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="derive-io")
        self._all: list[WorkerProcess] = []
        self._lock = threading.Lock()

    def submit(self, *args: Any) -> Future[Any]:
        return self._threads.submit(self._run, args)

    def _run(self, args: tuple[Any, ...]) -> Any:
        worker = self._idle.get()
        try:
            for attempt in (1, 2):
                if worker is None or not worker.alive:
                    worker = self._start()
                try:
                    return worker.derive(args)
                except (EOFError, BrokenPipeError, OSError):
                    worker.close()
                    worker = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")
        finally:
            self._idle.put(worker)

    def _start(self) -> WorkerProcess:
        w = WorkerProcess()
        with self._lock:
            self._all.append(w)
        return w

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for w in workers:
            w.close()
        self._threads.shutdown(wait=False, cancel_futures=True)


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def shared_pool() -> WorkerPool:
    """The derivation workers of this process (two at most), shared by every router."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = WorkerPool(max(1, min(2, os.cpu_count() or 1)))
            atexit.register(_POOL.close)
        return _POOL


def serve() -> None:
    """The child's loop: derive each request until stdin closes."""


    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the reply pipe
    src = sys.stdin.buffer
    while True:
        try:
            policy, catalog, ruleset = _read(src)
        except EOFError:
            return
        try:
            reply: tuple[str, object] = ("ok", derive(policy, catalog, ruleset))
        except Exception as exc:  # reported to the parent, which raises it there
            reply = ("error", f"{type(exc).__name__}: {exc}")
        _write(out, reply)

