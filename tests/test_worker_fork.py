"""A router keeps working in a child process, however the child was made (issue 11, finding 4).

The derivation workers belong to one process. A child made by `fork` (os.fork, multiprocessing
`fork`, Gunicorn --preload, Celery prefork) after its parent derived used to share the parent's
worker pipes and hang forever in `route()`; now it lets go of them and starts its own. Each
scenario runs in a subprocess with a timeout, so a hang fails the test instead of the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from router import Router, RouterConfig

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "tests" / "fixtures" / "catalog.json"
REQUEST = {"messages": [{"role": "user", "content": "hi"}]}
POLICIES: list[Any] = [
    ["policy", ["ev_zero"], ["filter"], ["rank", ["asc", "est_cost"]], ["select", ["first"]],
     ["mutate"], ["fallback"]],
    ["policy", ["ev_zero"], ["filter", ["in", "region", ["eu"]]], ["rank", ["asc", "est_cost"]],
     ["select", ["first"]], ["mutate"], ["fallback"]],
    ["policy", ["ev_zero"], ["filter", [">=", "context_window", 1000000]],
     ["rank", ["asc", "est_cost"]], ["select", ["first"]], ["mutate"], ["fallback"]],
]

SCENARIO = """
import json, multiprocessing as mp, os, select, signal, sys
from router import Router, RouterConfig

CATALOG = {catalog!r}
POLICIES = json.loads({policies!r})
REQUEST = {request!r}
ROUTER = None  # the parent's routers, inherited by forked children
THREADED = None  # derives on a thread of its own process


def routed(router):
    return [router.route(p, REQUEST).selected for p in POLICIES]


def in_child(inherited):
    out = {{}}
    if inherited:  # the parent's routers, which had derived (and may be deriving) at the fork
        out["inherited"] = routed(ROUTER)
        out["inherited_threaded"] = routed(THREADED)
    with Router(CATALOG, config=RouterConfig(environ={{}})) as fresh:
        out["new"] = routed(fresh)
    return out


def by_os_fork():
    ROUTER.register(POLICIES[2])  # a derivation in flight while we fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            data = json.dumps(in_child(True))
        except BaseException as exc:
            data = json.dumps({{"error": repr(exc)}})
        with os.fdopen(w, "w") as pipe:
            pipe.write(data)
        os._exit(0)
    os.close(w)
    if not select.select([r], [], [], 100)[0]:
        os.kill(pid, signal.SIGKILL)
        return {{"error": "the os.fork child hung"}}
    with os.fdopen(r) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


if __name__ == "__main__":
    ROUTER = Router(CATALOG, config=RouterConfig(environ={{}}))
    ROUTER.route(POLICIES[0], REQUEST)  # derived once: the parent's workers are up
    ROUTER.register(POLICIES[1])
    THREADED = Router(CATALOG, config=RouterConfig(environ={{}}, derive_in_processes=False))
    THREADED.route(POLICIES[0], REQUEST)
    results = {{}}
    for method in ("fork", "forkserver", "spawn"):
        with mp.get_context(method).Pool(1) as pool:
            results[method] = pool.apply_async(in_child, (method == "fork",)).get(100)
    results["os.fork"] = by_os_fork()
    results["parent"] = routed(ROUTER)
    ROUTER.close()
    print(json.dumps(results))
"""


def test_a_router_works_in_children_made_by_fork_forkserver_and_spawn(tmp_path: Path) -> None:
    with Router(CATALOG, config=RouterConfig(environ={}, derive_in_processes=False)) as here:
        expected = [here.route(p, REQUEST).selected for p in POLICIES]
    assert len(set(expected)) == 3  # three policies, three different answers
    script = tmp_path / "scenario.py"
    script.write_text(textwrap.dedent(SCENARIO).format(
        catalog=str(CATALOG), policies=json.dumps(POLICIES), request=REQUEST))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={"PYTHONPATH": str(ROOT),
                                                          "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    results = json.loads(done.stdout)
    assert results["parent"] == expected
    for forked in ("fork", "os.fork"):
        assert results[forked] == {"inherited": expected, "inherited_threaded": expected,
                                   "new": expected}, forked
    for fresh in ("forkserver", "spawn"):
        assert results[fresh] == {"new": expected}, fresh
