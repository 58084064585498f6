"""unhardcoded — an LLM policy router that decides by rules you can read.

Pipeline: admit → compile → derive → decide → dispatch → record. The public surface:
"""

from router.catalog.offerings import Catalog, Offering, build_catalog, default_catalog, load_catalog
from router.catalog.overlays import OverlayError
from router.catalog.refresh import ReloadReport
from router.common.problems import CatalogError, PolicyError, Problem, RefusedError, RequestError
from router.decide.decider import Decider, Decision
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
from router.dispatch.dispatcher import DispatchSettings
from router.engine.cache import DerivationCache
from router.engine.derive import Derivation, derive
from router.explain.explanation import Explanation
from router.explain.proof import Proof, check_proof, proof_of, to_dot, to_node_link
from router.explain.record import replay, same_decision, to_record
from router.facade import Router, RouteResult
from router.live.health import BreakerSettings
from router.live.state import LiveState, LiveValues
from router.policy.admit import admit, admit_text, canonical_json
from router.policy.terms import Policy
from router.request.features import RequestFeatures, parse_request

__all__ = [
    "BreakerSettings",
    "CascadeExhausted",
    "Catalog",
    "CatalogError",
    "Completion",
    "CompletionStream",
    "Decider",
    "Decision",
    "Derivation",
    "DerivationCache",
    "Discovery",
    "DispatchError",
    "DispatchSettings",
    "Explanation",
    "LiveState",
    "LiveValues",
    "NoAdmissibleOffering",
    "Offering",
    "OverlayError",
    "Policy",
    "PolicyError",
    "Problem",
    "Proof",
    "ProviderRejected",
    "RefusedError",
    "ReloadReport",
    "RequestError",
    "RequestFeatures",
    "RouteResult",
    "Router",
    "SyncCompletionStream",
    "admit",
    "admit_text",
    "build_catalog",
    "canonical_json",
    "check_proof",
    "default_catalog",
    "derive",
    "load_catalog",
    "parse_request",
    "proof_of",
    "replay",
    "same_decision",
    "to_dot",
    "to_node_link",
    "to_record",
]
