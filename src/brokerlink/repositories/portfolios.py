from sqlalchemy import select

from brokerlink.models import Portfolio
from brokerlink.repositories._base import Repository

__all__ = ["DEFAULT_PORTFOLIO_NAME", "PortfolioRepository"]

DEFAULT_PORTFOLIO_NAME = "Main"


class PortfolioRepository(Repository):
    """A user's portfolios."""

    async def create(self, *, user_id: int, name: str, base_currency: str = "USD") -> Portfolio:
        portfolio = Portfolio(user_id=user_id, name=name, base_currency=base_currency)
        self.session.add(portfolio)
        await self.session.flush()
        return portfolio

    async def get(self, portfolio_id: int) -> Portfolio | None:
        return await self.session.get(Portfolio, portfolio_id)

    async def list_for_user(self, user_id: int) -> list[Portfolio]:
        rows = await self.session.scalars(
            select(Portfolio).where(Portfolio.user_id == user_id).order_by(Portfolio.id)
        )
        return list(rows)

    async def get_or_create_default(self, user_id: int) -> Portfolio:
        existing = await self.session.scalar(
            select(Portfolio).where(
                Portfolio.user_id == user_id, Portfolio.name == DEFAULT_PORTFOLIO_NAME
            )
        )
        return existing or await self.create(user_id=user_id, name=DEFAULT_PORTFOLIO_NAME)
