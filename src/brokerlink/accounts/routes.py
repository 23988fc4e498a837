"""`/api/accounts` and `/api/positions`: read from the store, with freshness; never a live call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from brokerlink.accounts.schemas import AccountOut, NetWorthOut, PositionOut
from brokerlink.accounts.service import AccountsView
from brokerlink.api.deps import CurrentUser, DbSession, State
from brokerlink.repositories import PortfolioRepository

__all__ = ["router"]

router = APIRouter(tags=["accounts"])

Id = Annotated[int, Path(ge=1, le=2**62)]


def _view(state: State, session: DbSession) -> AccountsView:
    return AccountsView(
        session, policy=state.policy, clock=state.clock, max_age=state.analysis_max_age
    )


@router.get("/api/accounts", response_model=list[AccountOut])
async def list_accounts(state: State, session: DbSession, user: CurrentUser) -> list[AccountOut]:
    """Every account with its provider, capabilities, balances, last sync, staleness and when
    its next refresh is allowed."""
    return await _view(state, session).accounts(user.id)


@router.get("/api/net-worth", response_model=NetWorthOut)
async def get_net_worth(state: State, session: DbSession, user: CurrentUser) -> NetWorthOut:
    """Assets minus liabilities (credit cards and loans, from their balances), per currency and
    in the default portfolio's base currency when nothing else is held."""
    portfolio = await PortfolioRepository.from_session(session).get_or_create_default(user.id)
    return await _view(state, session).net_worth(user, portfolio.base_currency)


@router.get("/api/accounts/{account_id}", response_model=AccountOut)
async def get_account(
    account_id: Id, state: State, session: DbSession, user: CurrentUser
) -> AccountOut:
    return await _view(state, session).account(user.id, account_id)


@router.get("/api/accounts/{account_id}/positions", response_model=list[PositionOut])
async def account_positions(
    account_id: Id, state: State, session: DbSession, user: CurrentUser
) -> list[PositionOut]:
    """The account's stored positions, each with the provider's as-of times."""
    return await _view(state, session).positions(user.id, account_id)


@router.get("/api/positions", response_model=list[PositionOut])
async def all_positions(state: State, session: DbSession, user: CurrentUser) -> list[PositionOut]:
    """Every stored position of the user, per account and provider (not consolidated)."""
    return await _view(state, session).positions(user.id)
