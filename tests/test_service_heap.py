"""The service process's collector settings (`router/service/heap.py`), each checked in a fresh
interpreter so this test process's collector is left as it is."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_a_service_worker_freezes_its_start_up_heap_and_collects_young_objects_less_often() -> None:
    """... and switches threads every millisecond; a process that is not a service worker
    keeps its settings."""
    out = run("""
        import gc, sys
        from router.service import heap
        before = gc.get_threshold()
        interval = sys.getswitchinterval()
        heap.settle()  # not a service process: nothing changes
        untouched = (gc.get_freeze_count() == 0 and gc.get_threshold() == before
                     and sys.getswitchinterval() == interval == 0.005)
        heap.own_process()
        heap.settle()
        print(untouched, gc.get_threshold() == heap.THRESHOLDS, gc.get_freeze_count() > 1000,
              sys.getswitchinterval() == heap.SWITCH_INTERVAL_S == 0.001)
    """)
    assert out == "True True True True"


def test_a_reload_frees_cycles_that_were_frozen_at_start_up() -> None:
    """An old catalog's cycles, frozen at start-up, are freed by the settle after a reload."""
    out = run("""
        import gc, weakref
        from router.service import heap

        class Node:
            pass

        heap.own_process()
        old = Node(); old.me = old  # a cycle: reference counting alone never frees it
        freed = []
        weakref.finalize(old, lambda: freed.append(True))
        heap.settle()  # start-up: `old` is frozen
        del old
        gc.collect()
        still_there = not freed  # frozen objects are skipped by collections
        heap.settle()  # after a reload
        print(still_there, freed == [True])
    """)
    assert out == "True True"
