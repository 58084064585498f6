"""Derivation worker processes: the engine runs here, not in the process that decides.

Deriving in a child keeps pyDatalog's millions of short-lived objects — and the garbage
collection they cause — out of the deciding process, and lets two derivations use two cores.
The child is started as `python -P -m router.engine.worker_main` (never by re-running the
caller's main module, so scripts need no `if __name__ == "__main__"` guard) and speaks
length-prefixed pickle frames over its stdin/stdout: a request is (policy, catalog, ruleset), a
reply is ("ok", Derivation) or ("error", message). Only this package's own objects cross the pipe.

Failures are mapped to `EngineError` here, in one place, by type: a worker that cannot start or
dies twice in a row (`engine.worker_failed`), a derivation that runs past its time limit (the
worker is killed and replaced; `engine.derive_timeout`), an exception inside the engine
(`engine.derive_failed`). The pool belongs to one process: a forked child lets go of its
parent's workers (without touching their pipes) and starts its own. A worker exits, quietly, as
soon as its parent's pipe closes or its parent dies, even in the middle of a derivation.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from router.catalog.offerings import Catalog
from router.common.problems import Problem
from router.engine.compile import Ruleset
from router.engine.derive import Derivation, derive
from router.policy.terms import Policy

_HEADER = struct.Struct(">Q")

_PARENT_PID = "UNHARDCODED_WORKER_PARENT"  # tells a worker which process started it
DEFAULT_TIMEOUT_S = 60.0  # per derivation, in the worker; `RouterConfig.derive_timeout_s`
POOL_SIZE = 2  # processes per pool, started on first use: a long derivation leaves one free


class EngineError(Exception):
    """A derivation that could not be computed. `problem` has the code, message and hint:
    `engine.worker_failed` (the worker could not start, or died twice in a row),
    `engine.derive_timeout` (it ran past the time limit), `engine.derive_failed` (the engine
    raised)."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        self.problem = Problem(code=code, pointer="", message=message, hint=hint)
        super().__init__(self.problem.line())

    @property
    def code(self) -> str:
        return self.problem.code

    @property
    def message(self) -> str:
        return self.problem.message

    @property
    def hint(self) -> str | None:
        return self.problem.hint

    def to_json(self) -> dict[str, str | None]:
        return self.problem.model_dump()

    def __reduce__(self) -> tuple[type[EngineError], tuple[str, str, str | None]]:
        return (EngineError, (self.code, self.message, self.hint))


class _WorkerDied(Exception):
    """The worker's pipe broke (it could not start, crashed or was killed): try a fresh one."""


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


def worker_command() -> tuple[str, ...]:
    # -P: the current directory is not put on sys.path, so a `queue.py` (or a `router/`)
    # where the user runs us is never imported by the worker.
    return (sys.executable, "-P", "-m", "router.engine.worker_main")


def _exit_status(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


class WorkerProcess:
    """One child process; one derivation at a time."""

    def __init__(self, command: Sequence[str]) -> None:
        root = str(Path(__file__).resolve().parents[2])  # the folder that holds `router`
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env[_PARENT_PID] = str(os.getpid())  # if we die before it looks, it still knows
        self.proc = subprocess.Popen(list(command), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        self.expired = False

    def derive(self, args: tuple[Policy, Catalog, Ruleset], timeout_s: float) -> Derivation:
        """The worker's derivation; `_WorkerDied` if its pipe breaks, `EngineError` if it takes
        longer than `timeout_s` (the worker is killed) or the engine raised."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        timer = threading.Timer(timeout_s, self._expire)
        timer.daemon = True
        timer.start()
        try:
            _write(self.proc.stdin, args)
            status, value = _read(self.proc.stdout)
        except (EOFError, OSError) as exc:
            self.close()
            if self.expired:
                raise EngineError(
                    "engine.derive_timeout",
                    f"deriving the policy over {len(args[1])} offerings took longer than "
                    f"{timeout_s:g} s: the derivation was stopped",
                    "simplify the policy (many clauses and long `in`/`has_any` lists cost the "
                    "most) or raise the limit: `RouterConfig(derive_timeout_s=...)`") from None
            raise _WorkerDied(_exit_status(self.proc.returncode)) from exc
        finally:
            timer.cancel()
        if status != "ok":
            raise EngineError("engine.derive_failed", f"the derivation failed: {value}",
                              "a bug in the engine unless the worker ran out of memory; "
                              "please report it with the policy and the catalog")
        assert isinstance(value, Derivation)
        return value

    def _expire(self) -> None:
        self.expired = True
        with contextlib.suppress(OSError):
            self.proc.kill()

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
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def let_go(self) -> None:
        """In a forked child: drop our copies of the pipes to the parent's worker without
        writing, flushing or waiting. Each descriptor now points at /dev/null, so the worker
        still sees its parent's pipe close, and a later flush or close here touches nothing."""
        null = os.open(os.devnull, os.O_RDWR)
        try:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None and not stream.closed:
                    os.dup2(null, stream.fileno())
        finally:
            os.close(null)


class WorkerPool:
    """`size` worker processes (started on first use) behind a Future-returning `submit`.
    `command` starts one worker (default: `worker_command()`)."""

    def __init__(self, size: int = POOL_SIZE, command: Sequence[str] | None = None) -> None:
        self.size = size
        self.command = tuple(command or worker_command())
        self._idle: queue.Queue[WorkerProcess | None] = queue.Queue()
        for _ in range(size):
            self._idle.put(None)  # a slot; its process starts when first needed
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="derive-io")
        self._all: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, policy: Policy, catalog: Catalog, ruleset: Ruleset,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> Future[Derivation]:
        """Derive in a free worker; the future fails with `EngineError`. `timeout_s` counts
        from handing the request to a worker, not the wait for a free one."""
        return self._threads.submit(self._run, (policy, catalog, ruleset), timeout_s)

    def _run(self, args: tuple[Policy, Catalog, Ruleset], timeout_s: float) -> Derivation:
        worker = self._idle.get()
        try:
            failures: list[str] = []
            for _ in range(2):  # a worker that dies is replaced once for the same derivation
                try:
                    if worker is not None and not worker.alive:
                        self._forget(worker)
                        worker = None
                    if worker is None:
                        worker = self._start()
                    return worker.derive(args, timeout_s)
                except _WorkerDied as exc:
                    self._forget(worker)
                    worker = None
                    failures.append(str(exc))
                except OSError as exc:  # the process could not be created at all
                    failures.append(f"could not be started ({exc})")
                except EngineError:
                    if worker is not None and not worker.alive:
                        self._forget(worker)
                        worker = None
                    raise
            raise EngineError(
                "engine.worker_failed",
                f"the derivation worker failed twice in a row: it {', then '.join(failures)}",
                f"its own error, if any, is printed above; check that `{self.command[0]}` "
                "starts (PYTHONHOME, memory and process limits), or derive in this process: "
                "`RouterConfig(derive_in_processes=False)`")
        finally:
            self._idle.put(worker)

    def _start(self) -> WorkerProcess:
        if self._closed:
            raise EngineError("engine.worker_failed", "the derivation workers were shut down")
        w = WorkerProcess(self.command)
        with self._lock:
            self._all.append(w)
        return w

    def _forget(self, worker: WorkerProcess | None) -> None:
        if worker is None:
            return
        worker.close()
        with self._lock, contextlib.suppress(ValueError):
            self._all.remove(worker)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers, self._all = self._all, []
        for w in workers:
            w.close()
        self._threads.shutdown(wait=False, cancel_futures=True)

    def let_go(self) -> None:
        """In a forked child: forget the parent's workers (see `WorkerProcess.let_go`)."""
        for w in self._all:
            w.let_go()


_POOL: WorkerPool | None = None
_POOL_PID = 0
_POOL_LOCK = threading.Lock()
_INHERITED: list[WorkerPool] = []  # parents' pools, kept so nothing of theirs is finalised here
_HOOKED = False


def shared_pool() -> WorkerPool:
    """The derivation workers of this process, shared by every router. A forked child gets a
    pool of its own (`os.register_at_fork`, and a pid check for forks that skip the hooks)."""
    global _POOL, _POOL_PID, _HOOKED
    with _POOL_LOCK:
        if _POOL is not None and os.getpid() != _POOL_PID:
            _let_go_of_parent_pool()
        if _POOL is None:
            _POOL, _POOL_PID = WorkerPool(), os.getpid()
            if not _HOOKED:
                _HOOKED = True
                atexit.register(_close_shared_pool)
                os.register_at_fork(after_in_child=_after_fork_in_child)
        return _POOL


def _let_go_of_parent_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.let_go()
        _INHERITED.append(_POOL)
        _POOL = None


def _after_fork_in_child() -> None:
    global _POOL_LOCK
    _POOL_LOCK = threading.Lock()  # another thread of the parent may have held it
    if _POOL is not None and os.getpid() != _POOL_PID:
        _let_go_of_parent_pool()


def _close_shared_pool() -> None:
    if _POOL is not None and os.getpid() == _POOL_PID:
        _POOL.close()


# -- the child -------------------------------------------------------------------------------


def serve() -> None:
    """The child's loop: derive each request until stdin closes. The requests are read on a
    thread of their own, so the end of the pipe is seen at once, even in the middle of a
    derivation: the parent is gone (or done with us), no one is waiting for the reply, and the
    worker exits without a word. So it does when its parent dies but the pipe stays open."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the reply pipe
    src = sys.stdin.buffer
    # Ctrl-C reaches the whole process group: the parent decides, and its exit closes our pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests: queue.Queue[tuple[Policy, Catalog, Ruleset]] = queue.Queue()
    parent = os.environ.pop(_PARENT_PID, "")
    parent_pid = int(parent) if parent.isdigit() else os.getppid()

    def read_requests() -> None:
        try:
            while True:
                requests.put(_read(src))
        except (EOFError, OSError):
            os._exit(0)  # the pipe closed: nothing to answer; no flush, no traceback
        except BaseException as exc:  # a request we cannot read: say so, once
            print(f"derivation worker: unreadable request: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            os._exit(1)

    def watch_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=read_requests, name="requests", daemon=True).start()
    threading.Thread(target=watch_parent, name="parent", daemon=True).start()
    while True:
        policy, catalog, ruleset = requests.get()
        try:
            reply: tuple[str, object] = ("ok", derive(policy, catalog, ruleset))
        except Exception as exc:  # reported to the parent, which raises it there
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            _write(out, reply)
        except OSError:  # the parent closed its end while we derived
            os._exit(0)
