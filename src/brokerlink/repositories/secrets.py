from typing import cast

from sqlalchemy import Table, delete, func, select

from brokerlink.db.types import utcnow
from brokerlink.models import UserSecretEnvelope
from brokerlink.repositories._base import Repository
from brokerlink.repositories._upsert import upsert_statement

__all__ = ["EnvelopeSecretRepository"]

_TABLE = cast(Table, UserSecretEnvelope.__table__)


class EnvelopeSecretRepository(Repository):
    """Rows of `user_secrets_envelope` by name. Bytes in, bytes out: no cryptography here."""

    async def put(
        self,
        name: str,
        *,
        ciphertext: bytes,
        wrapped_data_key: bytes,
        key_id: str,
        user_id: int | None = None,
    ) -> UserSecretEnvelope:
        """Create or replace the secret called `name`."""
        now = utcnow()
        statement = upsert_statement(
            self.session,
            _TABLE,
            conflict=("name",),
            update=("user_id", "ciphertext", "wrapped_data_key", "key_id", "updated_at"),
        )
        await self.session.execute(
            statement,
            {
                "name": name,
                "user_id": user_id,
                "ciphertext": ciphertext,
                "wrapped_data_key": wrapped_data_key,
                "key_id": key_id,
                "created_at": now,
                "updated_at": now,
            },
        )
        row = await self.get(name)
        assert row is not None
        return row

    async def get(self, name: str) -> UserSecretEnvelope | None:
        return await self.session.scalar(
            select(UserSecretEnvelope)
            .where(UserSecretEnvelope.name == name)
            .execution_options(populate_existing=True)
        )

    async def delete(self, name: str) -> bool:
        """Remove the secret; False when there was none."""
        result = await self.session.execute(
            delete(_TABLE).where(_TABLE.c.name == name).returning(_TABLE.c.id)
        )
        return result.first() is not None

    async def list_by_prefix(self, prefix: str) -> list[UserSecretEnvelope]:
        """Secrets whose name starts with `prefix`, case-sensitively, ordered by name."""
        column = UserSecretEnvelope.name
        query = select(UserSecretEnvelope).where(
            # LIKE can use the index; SQLite's LIKE ignores ASCII case, so compare exactly too.
            column.startswith(prefix, autoescape=True),
            func.substr(column, 1, len(prefix)) == prefix,
        )
        query = query.order_by(column).execution_options(populate_existing=True)
        return list(await self.session.scalars(query))
