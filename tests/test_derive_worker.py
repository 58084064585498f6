"""Derivation in worker processes: same result as in-process, restart after a crash, and no
`if __name__ == "__main__"` guard needed in a caller's script."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from benchmarks.workload import catalog, policy
from router.engine.cache import DerivationCache
from router.engine.derive import derive
from router.engine.worker import shared_pool
from router.policy.admit import admit


def test_a_worker_derivation_equals_an_in_process_one() -> None:
    cat = catalog(120)
    pol = admit(policy(9))
    here = derive(pol, cat)
    cache = DerivationCache(processes=True)
    there = cache.get(pol, cat)
    assert there.catalog is cat  # re-bound to the caller's catalog object
    assert there.verdicts == here.verdicts
    assert there.rejected == here.rejected and there.residual == here.residual
    assert cache.peek(pol, cat) is there


def test_a_killed_worker_is_replaced() -> None:
    cat = catalog(60)
    pool = shared_pool()
    DerivationCache(processes=True).get(admit(policy(2)), cat)  # workers are up
    for w in list(pool._all):
        w.proc.kill()
        w.proc.wait()
    again = DerivationCache(processes=True).get(admit(policy(3)), cat)
    assert again.verdicts == derive(admit(policy(3)), cat).verdicts


def test_a_script_without_a_main_guard_works(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent("""
        from router import Router, RouterConfig
        r = Router(config=RouterConfig(environ={}))
        p = ["policy", ["ev_zero"], ["filter", ["<=", "output_price", 5.0]],
             ["rank", ["asc", "est_cost"]], ["select", ["first"]], ["mutate"], ["fallback"]]
        print(r.route(p, {"messages": [{"role": "user", "content": "hi"}]}).selected)
        r.close()
    """))
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={"PYTHONPATH": str(root),
                                                          "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and "Traceback" not in done.stderr
