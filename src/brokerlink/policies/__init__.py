"""Policies: what an account may do (capabilities), what a call may cost (cost guard), and
whether an order may go out (trading gate). Pure decisions plus the store-backed guards."""

from brokerlink.policies.capabilities import (
    CapabilityDecision,
    connection_type_for,
    derive_capabilities,
)
from brokerlink.policies.cost_guard import (
    BudgetExceeded,
    CostGuard,
    CostPolicy,
    RefreshDecision,
    RefreshRefused,
    RefreshTicket,
    decide_refresh,
)
from brokerlink.policies.trading_gate import TradingRefused, check_trading_allowed

__all__ = [
    "BudgetExceeded",
    "CapabilityDecision",
    "CostGuard",
    "CostPolicy",
    "RefreshDecision",
    "RefreshRefused",
    "RefreshTicket",
    "TradingRefused",
    "check_trading_allowed",
    "connection_type_for",
    "decide_refresh",
    "derive_capabilities",
]
