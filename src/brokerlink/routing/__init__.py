"""Link-time routing from the curated coverage map, and run-time routing by stored provider."""

from .coverage import (
    CoverageEntry,
    CoverageError,
    CoverageMap,
    CoverageRegistry,
    load_coverage,
    normalize_name,
)
from .router import (
    BrokerageStatus,
    LinkRouter,
    NoProviderAvailable,
    ProviderFlags,
    ReferenceData,
    RoutingDecision,
    UnknownProvider,
    provider_for_account,
)

__all__ = [
    "BrokerageStatus",
    "CoverageEntry",
    "CoverageError",
    "CoverageMap",
    "CoverageRegistry",
    "LinkRouter",
    "NoProviderAvailable",
    "ProviderFlags",
    "ReferenceData",
    "RoutingDecision",
    "UnknownProvider",
    "load_coverage",
    "normalize_name",
    "provider_for_account",
]
