"""The only code that talks SQL: one repository per table, each built with `from_session`.

Repositories flush and never commit; the boundary (`brokerlink.db.transaction`) commits.
"""

from brokerlink.repositories.accounts import MANUAL_ACCOUNT_ID, AccountRepository
from brokerlink.repositories.auth_tokens import AuthTokenRepository
from brokerlink.repositories.connections import ConnectionRepository
from brokerlink.repositories.cost_ledger import CostLedgerRepository
from brokerlink.repositories.orders import OrderRepository
from brokerlink.repositories.portfolios import DEFAULT_PORTFOLIO_NAME, PortfolioRepository
from brokerlink.repositories.positions import PositionRepository, PositionValues
from brokerlink.repositories.provider_calls import ProviderCallLogRepository
from brokerlink.repositories.refresh_log import RefreshLogRepository
from brokerlink.repositories.secrets import EnvelopeSecretRepository
from brokerlink.repositories.sign_in_attempts import SignInAttemptRepository
from brokerlink.repositories.users import UserRepository
from brokerlink.repositories.webhook_events import WebhookEventRepository

__all__ = [
    "DEFAULT_PORTFOLIO_NAME",
    "MANUAL_ACCOUNT_ID",
    "AccountRepository",
    "AuthTokenRepository",
    "ConnectionRepository",
    "CostLedgerRepository",
    "EnvelopeSecretRepository",
    "OrderRepository",
    "PortfolioRepository",
    "PositionRepository",
    "PositionValues",
    "ProviderCallLogRepository",
    "RefreshLogRepository",
    "SignInAttemptRepository",
    "UserRepository",
    "WebhookEventRepository",
]
