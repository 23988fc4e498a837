from datetime import datetime

from sqlalchemy import select, update

from brokerlink.models import AuthToken
from brokerlink.repositories._base import Repository

__all__ = ["AuthTokenRepository"]


class AuthTokenRepository(Repository):
    """API tokens and web sessions, looked up by the SHA-256 of the presented token."""

    async def add(
        self,
        *,
        user_id: int,
        kind: str,
        token_hash: str,
        name: str | None,
        expires_at: datetime | None,
    ) -> AuthToken:
        row = AuthToken(
            user_id=user_id, kind=kind, token_hash=token_hash, name=name, expires_at=expires_at
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def by_hash(self, token_hash: str) -> AuthToken | None:
        return await self.session.scalar(
            select(AuthToken).where(AuthToken.token_hash == token_hash)
        )

    async def list_for_user(self, user_id: int, kind: str | None = None) -> list[AuthToken]:
        query = select(AuthToken).where(AuthToken.user_id == user_id)
        if kind is not None:
            query = query.where(AuthToken.kind == kind)
        return list(await self.session.scalars(query.order_by(AuthToken.id)))

    async def revoke(self, token_hash: str, when: datetime) -> None:
        await self.session.execute(
            update(AuthToken)
            .where(AuthToken.token_hash == token_hash, AuthToken.revoked_at.is_(None))
            .values(revoked_at=when)
        )
