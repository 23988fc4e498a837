from sqlalchemy import select

from brokerlink.models import User
from brokerlink.repositories._base import Repository

__all__ = ["UserRepository"]


class UserRepository(Repository):
    """Users by id or email."""

    async def create(
        self,
        *,
        email: str | None = None,
        name: str | None = None,
        password_hash: str | None = None,
    ) -> User:
        user = User(email=email, name=name, password_hash=password_hash)
        self.session.add(user)
        await self.session.flush()
        return user

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))
