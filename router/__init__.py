"""unhardcoded — an LLM policy router that decides by rules you can read.

Pipeline: admit → compile → derive → decide → dispatch → record. The public surface:
"""

from router.admit import admit, admit_text, canonical_json
from router.api import Router, RouteResult
from router.completion import (
    CascadeExhausted,
    Completion,
    CompletionStream,
    DispatchError,
    NoAdmissibleOffering,
    ProviderRejected,
    SyncCompletionStream,
)
from router.decide import Decider, Decision
from router.derive import Derivation, DerivationCache, derive
from router.discovery import Discovery
from router.dispatch import DispatchSettings
from router.explain import Explanation
from router.features import RequestFeatures, parse_request
from router.health import BreakerSettings
from router.live import LiveState, LiveValues
from router.offerings import Catalog, Offering, build_catalog, default_catalog, load_catalog
from router.overlays import OverlayError
from router.problems import CatalogError, PolicyError, Problem, RefusedError, RequestError
from router.proof import Proof, check_proof, proof_of, to_dot, to_node_link
from router.record import replay, same_decision, to_record
from router.refresh import ReloadReport
from router.terms import Policy

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
