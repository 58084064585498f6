"""The background writer: decisions are queued on the request path (a `put`, nothing else) and
written in batches by one thread, so recording costs the caller microseconds.

A queued decision is durable within `flush_interval_s` plus one batch's write (documented
bound: 250 ms at the defaults); `flush()` waits until everything queued so far is committed,
and `close()` flushes. Once a decision arrives the writer lets company gather for
`flush_interval_s` (unless a batch is already full, or a flush hurries it) and writes what came
in one transaction: one wake-up and one commit per batch, not per decision (at one request at a
time, a batch of two used to cost ~1.5 ms of the service's CPU per request).

A store that fails is logged (one line per failure, no traceback on the request path) and
counted in `errors`; requests never fail because of it. A queue that is full (the store cannot
keep up) drops the newest decisions and counts them in `dropped`.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import queue
import threading
import uuid
import weakref
from concurrent.futures import Future
from dataclasses import dataclass

from router.common.forks import in_child_after_fork
from router.common.problems import RefusedError
from router.records.row import Pending, Row, Snapshots, build_row
from router.records.store import ChainWriter, RecordStore

log = logging.getLogger("unhardcoded.records")


class _Wake:
    """Queued by `flush`: write the batch now instead of waiting for more."""


_WAKE = _Wake()


@dataclass(frozen=True)
class WriterSettings:
    flush_interval_s: float = 0.1
    max_batch: int = 256
    max_queue: int = 100_000


class RecordWriter:
    def __init__(self, store: RecordStore, key: bytes | None = None,
                 settings: WriterSettings | None = None) -> None:
        self.store = store
        self.key = key
        self.settings = settings or WriterSettings()
        self.snapshots = Snapshots()
        self.written = 0
        self.errors = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._cond = threading.Condition()
        self._submitted = 0
        self._done = 0
        self._closed = False
        self._start()
        in_child_after_fork(self)
        _flush_at_exit(self)

    def _start(self) -> None:
        """A new chain (writer id) and thread; in a forked child too, whose copy of the
        parent's queue and thread is gone."""
        self.writer = ChainWriter(f"{uuid.uuid4().hex[:16]}-{os.getpid()}", self.key)
        self._queue: queue.Queue[Pending | _Wake | None] = queue.Queue(self.settings.max_queue)
        self._cond = threading.Condition()
        self._hurry = threading.Event()  # set by flush/close: write what is queued now
        self._submitted = self._done = 0
        self._thread = threading.Thread(target=self._run, name="unhardcoded-records",
                                        daemon=True)
        self._thread.start()

    def submit(self, pending: Pending) -> None:
        """Queue a decision (the request path's whole cost of recording)."""
        if self._closed:
            return
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            self.dropped += 1
            if pending.ack is not None:
                pending.ack.set_result(False)
            return
        with self._cond:
            self._submitted += 1

    def write_now(self, pending: Pending, timeout_s: float = 30.0) -> bool:
        """Queue a decision and wait until it is committed: True if it was (for routers that
        must not serve a decision they could not record)."""
        ack: Future[bool] = Future()
        self.submit(dataclasses.replace(pending, ack=ack))
        if self._closed:
            return False
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_WAKE)
        self._hurry.set()
        try:
            return ack.result(timeout_s)
        except TimeoutError:
            return False

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every decision queued so far is committed (or failed); True if so."""
        with self._cond:
            target = self._submitted
            if self._done >= target:
                return True
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_WAKE)  # write what is queued now, without the wait
        self._hurry.set()
        with self._cond:
            return self._cond.wait_for(lambda: self._done >= target, timeout_s)

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._queue.put(None)
        self._hurry.set()
        self._thread.join(timeout=30)
        self.store.close()

    def _run(self) -> None:
        q = self._queue
        most = self.settings.max_batch
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, _Wake):
                continue
            if not self._hurry.is_set() and q.qsize() < most - 1:
                self._hurry.wait(self.settings.flush_interval_s)  # let company gather
            batch: list[Pending | None] = [item]
            del item  # (the batch holds it, and lets it go once its row is built)
            ending = False
            while len(batch) < most:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    ending = True
                    break
                if not isinstance(nxt, _Wake):
                    batch.append(nxt)
                del nxt
            if q.empty():
                self._hurry.clear()
            self._write(batch)
            if ending:
                return

    def _write(self, batch: list[Pending | None]) -> None:
        """Write `batch` in one transaction. Each decision is let go as soon as its row is
        built (its slot in `batch` cleared): a decision and the full ranking its row settled
        are ~100 objects, and a batch held whole until its commit made the collector walk
        them all (benchmarks/README.md, "Decisions the collector walks")."""
        n = len(batch)
        acks = [p.ack for p in batch if p is not None and p.ack is not None]
        rows: list[Row] = []
        ok = False
        try:
            for i, p in enumerate(batch):
                assert p is not None
                batch[i] = None
                rows.append(build_row(p, self.snapshots))
                del p
            self.store.write(rows, self.writer)
            self.written += len(rows)
            ok = True
        except RefusedError as exc:
            self._failed(n, str(exc))
        except Exception as exc:  # a store failure must never stop the writer thread
            self._failed(n, f"{type(exc).__name__}: {exc}")
        finally:
            for ack in acks:
                if not ack.done():
                    ack.set_result(ok)
            with self._cond:
                self._done += n
                self._cond.notify_all()

    def after_fork_in_child(self) -> None:
        if not self._closed:
            try:
                self.store.after_fork()
            except Exception as exc:  # the child keeps serving without records
                self._failed(0, f"cannot reopen the store after fork: {exc}")
                self._closed = True
                return
            self._start()

    def _failed(self, n: int, message: str) -> None:
        self.errors += n
        self.last_error = message
        log.error("records: %d decision(s) not stored: %s", n, message)


_OPEN: weakref.WeakSet[RecordWriter] = weakref.WeakSet()
_EXIT_LOCK = threading.Lock()
_exit_hooked = False


def _flush_at_exit(writer: RecordWriter) -> None:
    """A program that ends without closing its router still writes what it queued (the
    writer's thread is a daemon, so the interpreter would not wait for it)."""
    global _exit_hooked
    with _EXIT_LOCK:
        _OPEN.add(writer)
        if not _exit_hooked:
            atexit.register(_flush_all)
            _exit_hooked = True


def _flush_all() -> None:
    for w in list(_OPEN):
        if not w._closed:
            w.flush(timeout_s=10.0)
