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


def test_code_in_the_working_directory_never_runs(tmp_path: Path) -> None:
    """A hostile `queue.py` / `pickle.py` / `router/` where the user runs the CLI is not imported
    by the derivation worker (it starts with `-P`)."""
    marker = tmp_path / "pwned"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    for name in ("queue.py", "pickle.py", "struct.py", "subprocess.py"):
        (tmp_path / name).write_text(payload)
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "__init__.py").write_text(payload)
    examples = Path(__file__).resolve().parents[1] / "examples"
    cli = Path(sys.executable).with_name("unhardcoded")
    done = subprocess.run([str(cli), "route", "--policy",
                           str(examples / "support-tickets.policy.json"), "--request",
                           str(examples / "support-ticket.request.json"), "--max-rows", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "winner" in done.stdout.lower() or "selected" in done.stdout.lower()
    assert not marker.exists()
