"""What the request handlers read from their service (a protocol: `app.Service` provides it,
and the handlers never import the app)."""

from __future__ import annotations

from typing import Protocol

from router.facade import Router
from router.service.metrics import Metrics
from router.service.policies import Chooser
from router.service.settings import ServiceSettings


class State(Protocol):
    settings: ServiceSettings
    router: Router | None
    chooser: Chooser
    metrics: Metrics
