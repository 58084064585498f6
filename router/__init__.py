"""unhardcoded — an LLM policy router that decides by rules you can read, enforces them, and
proves every decision.

Pipeline: admit → compile → derive → decide → dispatch → record, one package per stage under
`router/`. This module is the public surface: what users receive and extend. Everything else is
internal and may change.
"""

from importlib import metadata as _metadata

from router.catalog.offerings import Catalog, Offering, build_catalog, default_catalog, load_catalog
from router.catalog.overlays import OverlayError, apply_overlays, load_overlays
from router.catalog.refresh import ReloadReport
from router.common.problems import CatalogError, PolicyError, Problem, RefusedError, RequestError
from router.config import RouterConfig
from router.decide.decider import Decision
from router.dispatch.completion import (
    CascadeExhausted,
    Completion,
    CompletionStream,
    DispatchError,
    NoAdmissibleOffering,
    ProviderRejected,
    SyncCompletionStream,
)
from router.dispatch.discovery import Discovery
from router.dispatch.dispatcher import Attempt, DispatchSettings, Outcome
from router.dispatch.failures import UpstreamFailure
from router.dispatch.providers.base import Endpoint, Provider, ProviderCall, Secret
from router.engine.worker import EngineError
from router.explain.explanation import Explanation, FailedClause
from router.explain.proof import Proof, check_proof, proof_of, to_dot, to_node_link
from router.explain.record import replay, same_decision, to_record
from router.explain.record_model import DecisionRecord
from router.facade import Router, RouteResult
from router.live.health import BreakerSettings
from router.live.state import LiveState, LiveValues
from router.policy.admit import admit, admit_text, canonical_json
from router.policy.terms import Policy
from router.policy.truth import Truth
from router.request.features import RequestFeatures, parse_request

try:
    __version__ = _metadata.version("unhardcoded")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+source"

__all__ = [
    "Attempt",
    "BreakerSettings",
    "CascadeExhausted",
    "Catalog",
    "CatalogError",
    "Completion",
    "CompletionStream",
    "Decision",
    "DecisionRecord",
    "Discovery",
    "DispatchError",
    "DispatchSettings",
    "Endpoint",
    "EngineError",
    "Explanation",
    "FailedClause",
    "LiveState",
    "LiveValues",
    "NoAdmissibleOffering",
    "Offering",
    "Outcome",
    "OverlayError",
    "Policy",
    "PolicyError",
    "Problem",
    "Proof",
    "Provider",
    "ProviderCall",
    "ProviderRejected",
    "RefusedError",
    "ReloadReport",
    "RequestError",
    "RequestFeatures",
    "RouteResult",
    "Router",
    "RouterConfig",
    "Secret",
    "SyncCompletionStream",
    "Truth",
    "UpstreamFailure",
    "__version__",
    "admit",
    "admit_text",
    "apply_overlays",
    "build_catalog",
    "canonical_json",
    "check_proof",
    "default_catalog",
    "load_catalog",
    "load_overlays",
    "parse_request",
    "proof_of",
    "replay",
    "same_decision",
    "to_dot",
    "to_node_link",
    "to_record",
]
