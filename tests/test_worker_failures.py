"""A derivation worker that cannot start, or dies twice in a row, is a router error with a code,
a message and a hint (`EngineError`, `engine.worker_failed`); on the command line a non-zero
exit with the problem on stderr, never exit 0 with nothing printed (issue 11, finding 2)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from benchmarks.workload import catalog, policy
from router.engine.compile import load_ruleset
from router.engine.derive import derive
from router.engine.worker import EngineError, WorkerPool
from router.policy.admit import admit

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def test_a_worker_that_cannot_start_is_an_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken environment (here a PYTHONHOME without a standard library): the worker's
    interpreter dies at startup, twice; the caller gets `engine.worker_failed`."""
    monkeypatch.setenv("PYTHONHOME", "/nonexistent")  # read only by the worker's interpreter
    pool = WorkerPool()
    try:
        with pytest.raises(EngineError) as caught:
            pool.submit(admit(policy(2)), catalog(20), load_ruleset()).result(timeout=120)
    finally:
        pool.close()
    err = caught.value
    assert err.code == "engine.worker_failed"
    assert "twice in a row" in err.message and "exited with status" in err.message
    assert err.hint and "derive_in_processes=False" in err.hint
    assert pickle.loads(pickle.dumps(err)).problem == err.problem


def test_a_worker_that_cannot_be_created_is_an_engine_error() -> None:
    pool = WorkerPool(command=("/nonexistent/python3",))
    try:
        with pytest.raises(EngineError) as caught:
            pool.submit(admit(policy(2)), catalog(20), load_ruleset()).result(timeout=120)
    finally:
        pool.close()
    assert caught.value.code == "engine.worker_failed"
    assert "could not be started" in caught.value.message


def test_a_worker_killed_twice_in_a_row_is_an_engine_error() -> None:
    """Every worker the pool starts is SIGKILLed (as an OOM killer would) before it can answer:
    the pool retries once on a fresh worker, then reports, naming the signal. The pool still
    works once the killing stops."""
    cat, pol, ruleset = catalog(300), admit(policy(9)), load_ruleset()
    pool = WorkerPool(size=1)
    stop = threading.Event()
    killed: list[int] = []

    def killer() -> None:
        while not stop.is_set():
            with pool._lock:
                workers = list(pool._all)
            for w in workers:
                if w.proc.pid not in killed:
                    w.proc.kill()
                    killed.append(w.proc.pid)
            stop.wait(0.001)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        with pytest.raises(EngineError) as caught:
            pool.submit(pol, cat, ruleset).result(timeout=120)
        stop.set()
        thread.join()
        assert caught.value.code == "engine.worker_failed"
        assert caught.value.message.count("was killed by SIGKILL") == 2
        assert len(killed) == 2
        again = pool.submit(pol, cat, ruleset).result(timeout=120)
        assert again.verdicts == derive(pol, cat, ruleset).verdicts
    finally:
        stop.set()
        pool.close()


def test_the_cli_exits_non_zero_with_the_problem_when_the_worker_cannot_start() -> None:
    """`unhardcoded route` in an environment where the worker's interpreter cannot start
    (PYTHONHOME set after the CLI itself started): exit 5, the problem on stderr as JSON, and
    nothing on stdout. It used to exit 0 with no output."""
    code = ("import os, sys; os.environ['PYTHONHOME'] = '/nonexistent'; "
            "from router.cli.main import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run(
        [sys.executable, "-c", code, "route",
         "--policy", str(EXAMPLES / "support-tickets.policy.json"),
         "--request", str(EXAMPLES / "support-ticket.request.json")],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 5, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    report = json.loads(done.stderr[done.stderr.index('{\n "ok": false'):])
    assert report["ok"] is False
    [problem] = report["problems"]
    assert problem["code"] == "engine.worker_failed"
    assert "twice in a row" in problem["message"] and problem["hint"]
