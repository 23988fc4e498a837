"""The operator dashboard: how providers, syncs, refreshes and webhooks are doing (admins only)."""

from brokerlink.operator.schemas import OperatorSummary
from brokerlink.operator.service import OperatorService

__all__ = ["OperatorService", "OperatorSummary"]
