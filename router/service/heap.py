"""The service process's garbage collector and thread switching.

A serving process holds a large, long-lived heap — the catalog's offerings, every derivation's
verdicts, the deciders — and makes millions of short-lived objects per minute. With Python's
default thresholds (700, 10, 10) the collector ran ~1,700 young and 15 full collections in 8 s
of load at 50 clients, 1.5–2.1 s in all, each full one walking the whole long-lived heap
(benchmarks/README.md, "Service under load"). So a serving process:

- freezes what start-up built (`gc.freeze()`: later collections skip it; reference counting
  still frees it) once the policies are derived, and again after each reload, which first
  unfreezes and collects, so an old catalog's or derivation's cycles are freed too (one full
  collection per reload, ~0.1–0.3 s, on the event loop);
- collects the young generation every `THRESHOLDS[0]` allocations instead of 700.

It also shortens the interpreter's switch interval (`SWITCH_INTERVAL_S`, 1 ms instead of 5):
when the records writer's thread runs Python (building a batch of rows) and the event loop's
thread wants the GIL back — after every network read — the loop waits at most that long for its
turn each time.

Only the service's own processes do this (`own_process()`, from the app factory uvicorn calls
in each worker); a program that embeds the library keeps its collector and switch interval as
it set them.
"""

from __future__ import annotations

import gc
import sys

THRESHOLDS = (50_000, 50, 100)
SWITCH_INTERVAL_S = 0.001
_owned = False


def own_process() -> None:
    """This process is a service worker: tune its collector and switch interval."""
    global _owned
    _owned = True
    gc.set_threshold(*THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def settle() -> None:
    """After start-up or a reload: collect what loading left behind, then freeze the rest."""
    if not _owned:
        return
    gc.unfreeze()
    gc.collect()
    gc.freeze()
