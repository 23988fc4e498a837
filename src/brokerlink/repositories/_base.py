from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    """Base of every repository: holds the session; never commits (the boundary does)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)
