"""The derivation worker child's entry point: `python -P -m router.engine.worker_main`.

A module of its own, so that running it never re-executes `router.engine.worker`, which the
`router` package has already imported (that would warn and load the module twice)."""

from router.engine.worker import serve

serve()
