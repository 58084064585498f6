"""Objects that must act in a forked child — reconnect to a database, restart a thread — say so
once: `in_child_after_fork(obj)`, and `obj.after_fork_in_child()` runs in every child forked
while `obj` lives. One hook for all of them, registered on first use (nothing at import)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def after_fork_in_child(self) -> None: ...


_OBJECTS: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_LOCK = threading.Lock()
_hooked = False


def in_child_after_fork(obj: ForkAware) -> None:
    global _hooked
    with _LOCK:
        _OBJECTS.add(obj)
        if not _hooked:
            os.register_at_fork(after_in_child=_run_in_child)
            _hooked = True


def _run_in_child() -> None:
    for obj in list(_OBJECTS):
        obj.after_fork_in_child()
