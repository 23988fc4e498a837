"""ORM tables, one module per table. Importing this package registers them all on `Base`."""

from brokerlink.models.account import Account
from brokerlink.models.auth_token import AuthToken
from brokerlink.models.connection import Connection
from brokerlink.models.cost_ledger import CostEntry
from brokerlink.models.enums import (
    AccountSyncStatus,
    ConnectionStatus,
    LedgerStatus,
    OrderRecordState,
    PositionStatus,
    RefreshStatus,
    RefreshTrigger,
)
from brokerlink.models.order import OrderRecord
from brokerlink.models.portfolio import Portfolio
from brokerlink.models.position import Position
from brokerlink.models.provider_call_log import ProviderCall
from brokerlink.models.refresh_log import RefreshLog
from brokerlink.models.sign_in_attempt import SignInAttempt
from brokerlink.models.user import User
from brokerlink.models.user_secret_envelope import UserSecretEnvelope
from brokerlink.models.webhook_event import WebhookEvent

__all__ = [
    "Account",
    "AccountSyncStatus",
    "AuthToken",
    "Connection",
    "ConnectionStatus",
    "CostEntry",
    "LedgerStatus",
    "OrderRecord",
    "OrderRecordState",
    "Portfolio",
    "Position",
    "PositionStatus",
    "ProviderCall",
    "RefreshLog",
    "RefreshStatus",
    "RefreshTrigger",
    "SignInAttempt",
    "User",
    "UserSecretEnvelope",
    "WebhookEvent",
]
