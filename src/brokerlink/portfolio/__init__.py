"""One portfolio from every provider and manual entries (`consolidate`), and its analysis view."""

from brokerlink.portfolio.consolidate import (
    DEFAULT_CASH_PROXIES,
    PROVIDER_PRIORITY,
    AccountRef,
    AnalysisLine,
    ConsolidatedPortfolio,
    DuplicateAccount,
    MixedCurrencyError,
    SourcePosition,
    Superseded,
    analysis_view,
    consolidate,
    detect_duplicate_accounts,
    is_cash,
)

__all__ = [
    "DEFAULT_CASH_PROXIES",
    "PROVIDER_PRIORITY",
    "AccountRef",
    "AnalysisLine",
    "ConsolidatedPortfolio",
    "DuplicateAccount",
    "MixedCurrencyError",
    "SourcePosition",
    "Superseded",
    "analysis_view",
    "consolidate",
    "detect_duplicate_accounts",
    "is_cash",
]
