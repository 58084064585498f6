"""A derivation worker whose parent is SIGKILLed in the middle of a derivation exits at once and
quietly: no traceback, no derivation finished for no one (issue 11, finding 15). It notices the
end of its request pipe; when something else still holds that pipe open, it notices that its
parent changed — even when the parent died before the worker had started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PARENT = """
import os, signal, subprocess, sys, time
from benchmarks.workload import catalog, policy
from router.engine.compile import load_ruleset
from router.engine.worker import shared_pool
from router.policy.admit import admit

cat, pol, ruleset = catalog(3000), admit(policy(15)), load_ruleset()  # seconds to derive
pool = shared_pool()
pool.submit(pol, cat, ruleset)
while not pool._all:
    time.sleep(0.001)
worker = pool._all[0].proc
held = ""
if sys.argv[1] != "closed":  # another process keeps the worker's request pipe open
    held = subprocess.Popen(["sleep", "600"], pass_fds=[worker.stdin.fileno()]).pid
print(worker.pid, held, flush=True)
if sys.argv[1] != "held_at_start":  # else we die before the worker has even started
    time.sleep(1.0)  # the request is on its way; the derivation takes seconds more
os.kill(os.getpid(), signal.SIGKILL)
"""


def _running(pid: int) -> bool:
    """Whether `pid` has not exited (a zombie nobody reaped yet has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("pipe", ["closed", "held", "held_at_start"])
def test_an_orphaned_worker_exits_quietly(tmp_path: Path, pipe: str) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(PARENT))
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        parent = subprocess.Popen([sys.executable, str(script), pipe], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=err, text=True,
                                  env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert parent.stdout is not None
        fields = parent.stdout.readline().split()
        assert parent.wait(timeout=120) == -signal.SIGKILL
    worker, holder = int(fields[0]), int(fields[1]) if len(fields) > 1 else None
    try:
        deadline = time.monotonic() + 120  # a guard against hanging, not a speed assertion
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(worker), "the orphaned worker is still running"
    finally:
        for pid in (worker, holder):
            if pid is not None and _running(pid):
                os.kill(pid, signal.SIGKILL)
    text = stderr.read_text()
    assert "Traceback" not in text and "Error" not in text, text
