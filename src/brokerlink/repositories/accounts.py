from datetime import datetime

from sqlalchemy import select

from brokerlink.domain.enums import AccountType
from brokerlink.domain.models import Capabilities
from brokerlink.models import Account, AccountSyncStatus, Connection
from brokerlink.repositories._base import Repository

__all__ = ["MANUAL_ACCOUNT_ID", "AccountRepository"]

#: `provider_account_id` of the one account under a user's manual connection.
MANUAL_ACCOUNT_ID = "manual"


class AccountRepository(Repository):
    """Accounts under connections."""

    async def upsert(
        self,
        connection: Connection,
        *,
        provider_account_id: str,
        name: str | None = None,
        type: AccountType = AccountType.BROKERAGE,
        currency: str | None = None,
        number_mask: str | None = None,
        capabilities: Capabilities | None = None,
    ) -> Account:
        """The account for (connection, provider account id), created or updated in place."""
        account = await self.get_by_provider_id(connection.id, provider_account_id)
        if account is None:
            account = Account(connection_id=connection.id, provider_account_id=provider_account_id)
            self.session.add(account)
        account.name = name
        account.type = type
        account.currency = currency
        account.number_mask = number_mask
        account.capabilities = capabilities or Capabilities()
        await self.session.flush()
        return account

    async def mark_fresh(
        self, account: Account, *, synced_at: datetime, data_as_of: datetime | None
    ) -> None:
        account.sync_status = AccountSyncStatus.FRESH
        account.last_synced_at = synced_at
        account.data_as_of = data_as_of or account.data_as_of
        account.last_error = None
        account.last_error_at = None
        await self.session.flush()

    async def mark_failed(
        self, account: Account, *, error: str, at: datetime, broken: bool = False
    ) -> None:
        """Record a failed sync; the account's positions are not touched."""
        account.sync_status = AccountSyncStatus.BROKEN if broken else AccountSyncStatus.STALE
        account.last_error = error
        account.last_error_at = at
        await self.session.flush()

    async def get_or_create_manual(self, connection: Connection) -> Account:
        existing = await self.get_by_provider_id(connection.id, MANUAL_ACCOUNT_ID)
        if existing is not None:
            return existing
        return await self.upsert(
            connection, provider_account_id=MANUAL_ACCOUNT_ID, name="Manual", type=AccountType.OTHER
        )

    async def get(self, account_id: int) -> Account | None:
        return await self.session.get(Account, account_id)

    async def get_by_provider_id(
        self, connection_id: int, provider_account_id: str
    ) -> Account | None:
        return await self.session.scalar(
            select(Account).where(
                Account.connection_id == connection_id,
                Account.provider_account_id == provider_account_id,
            )
        )

    async def list_for_connection(self, connection_id: int) -> list[Account]:
        query = select(Account).where(Account.connection_id == connection_id).order_by(Account.id)
        return list(await self.session.scalars(query))

    async def list_for_user(self, user_id: int) -> list[Account]:
        query = (
            select(Account)
            .join(Connection, Connection.id == Account.connection_id)
            .where(Connection.user_id == user_id)
            .order_by(Account.id)
        )
        return list(await self.session.scalars(query))
