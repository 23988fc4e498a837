"""`/api/portfolios`: the consolidated portfolio, its analysis view, consolidation, manual
positions and the user's choice between duplicated accounts. Served from the store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.accounts.schemas import AccountOut, PositionOut
from brokerlink.accounts.service import AccountsView, position_out
from brokerlink.api.deps import CurrentUser, DbSession, State
from brokerlink.api.state import AppState
from brokerlink.errors import NotFoundError
from brokerlink.models import Portfolio, User
from brokerlink.portfolio.cache import DataVersion, data_version, fresh_until, preferences_key
from brokerlink.portfolio.holdings import build_portfolio
from brokerlink.portfolio.schemas import (
    AnalysisLineOut,
    ConsolidationOut,
    ManualAccountIn,
    ManualPositionIn,
    ManualPositionPatch,
    PortfolioOut,
    PortfolioSummaryOut,
    PreferIn,
)
from brokerlink.portfolio.service import (
    ConsolidationSummary,
    PortfolioService,
    preferred_accounts,
)
from brokerlink.repositories import PortfolioRepository

__all__ = ["build_portfolio", "router"]

router = APIRouter(tags=["portfolio"])

Id = Annotated[int, Path(ge=1, le=2**62)]


def service(state: AppState, session: AsyncSession, user: User) -> PortfolioService:
    return PortfolioService(
        session, cash_proxies=state.cash_proxies, prefer_accounts=preferred_accounts(user)
    )


async def _portfolio(session: AsyncSession, user: User, portfolio_id: int | None) -> Portfolio:
    """The user's portfolio `portfolio_id` (another user's is not found), or their default."""
    portfolios = PortfolioRepository.from_session(session)
    if portfolio_id is None:
        return await portfolios.get_or_create_default(user.id)
    found = await portfolios.get(portfolio_id)
    if found is None or found.user_id != user.id:
        raise NotFoundError(f"portfolio {portfolio_id} not found")
    return found


async def portfolio_out(
    state: AppState, session: AsyncSession, user: User, portfolio_id: int | None = None
) -> PortfolioOut:
    portfolio = await _portfolio(session, user, portfolio_id)
    pid = portfolio.id
    # Served from state.portfolio_cache while the data it was computed from is unchanged
    # (portfolio/cache.py); the version is read first, so a concurrent write only causes a miss.
    cache = state.portfolio_cache
    version: DataVersion = ()
    if cache is not None:
        version = await data_version(
            session,
            user_id=user.id,
            portfolio_id=pid,
            extra=(portfolio.name, preferences_key(preferred_accounts(user))),
        )
        cached = cache.get(user.id, pid, version, now=state.clock())
        if cached is not None:
            return cached
    result, duplicates = await service(state, session, user).consolidated(pid, user_id=user.id)
    accounts = await AccountsView(
        session, policy=state.policy, clock=state.clock, max_age=state.analysis_max_age
    ).accounts(user.id)
    labels = {
        str(a.id): " ".join(
            p for p in (a.institution, a.name, f"••{a.mask}" if a.mask else "") if p
        )
        for a in accounts
    }
    stale = sum(1 for a in accounts if a.stale and a.provider != "manual")
    out = build_portfolio(pid, portfolio.name, result, duplicates, labels, stale)
    if cache is not None:
        cache.put(
            user.id,
            pid,
            version,
            out,
            now=state.clock(),
            valid_until=fresh_until(
                ((a.provider, a.stale, a.last_synced_at) for a in accounts),
                state.analysis_max_age,
            ),
        )
    return out


def _summary(s: ConsolidationSummary) -> ConsolidationOut:
    return ConsolidationOut(
        portfolio_id=s.portfolio_id,
        positions=s.positions,
        superseded=s.superseded,
        providers=s.providers,
        last_updated=s.last_updated,
        cash=s.cash,
        duplicates=s.duplicates,
    )


@router.get("/api/portfolios", response_model=list[PortfolioSummaryOut])
async def list_portfolios(session: DbSession, user: CurrentUser) -> list[PortfolioSummaryOut]:
    portfolios = PortfolioRepository.from_session(session)
    await portfolios.get_or_create_default(user.id)
    return [
        PortfolioSummaryOut(id=p.id, name=p.name, base_currency=p.base_currency)
        for p in await portfolios.list_for_user(user.id)
    ]


@router.get("/api/portfolio", response_model=PortfolioOut)
async def default_portfolio(state: State, session: DbSession, user: CurrentUser) -> PortfolioOut:
    """The user's default portfolio, consolidated across every provider and manual entry."""
    return await portfolio_out(state, session, user)


@router.get("/api/portfolios/{portfolio_id}", response_model=PortfolioOut)
async def get_portfolio(
    portfolio_id: Id, state: State, session: DbSession, user: CurrentUser
) -> PortfolioOut:
    """Holdings (ticker, quantity, price, value, weight, sources), cash per currency,
    allocations by type, account and provider, and duplicated accounts with the choice made."""
    return await portfolio_out(state, session, user, portfolio_id)


@router.get("/api/portfolios/{portfolio_id}/analysis", response_model=list[AnalysisLineOut])
async def analysis(
    portfolio_id: Id,
    state: State,
    session: DbSession,
    user: CurrentUser,
    sync_if_stale: Annotated[
        bool,
        Query(description="Sync first (and wait) when any account is older than the max age."),
    ] = False,
) -> list[AnalysisLineOut]:
    """Ticker → shares summed over every source, cash on its proxy ticker (USD → SGOV).

    Analysis code that must not run on old data asks for `sync_if_stale`: the one read that
    may wait on the providers, and only when the stored data is older than the setting."""
    await _portfolio(session, user, portfolio_id)
    if sync_if_stale:
        await session.commit()  # hold no transaction (SQLite's write lock) while syncing
        if await state.syncs.engine.is_stale(user.id, state.analysis_max_age):
            await state.syncs.user(user.id)
    lines = await service(state, session, user).analysis(portfolio_id, user_id=user.id)
    return [
        AnalysisLineOut(
            ticker=line.ticker,
            shares=line.shares,
            currency=line.currency,
            type=line.type,
            account_id=line.account_id,
            cost_basis=line.cost_basis,
            provider=line.provider.value,
            sources=line.sources,
            is_cash_proxy=line.is_cash_proxy,
        )
        for line in sorted(lines.values(), key=lambda item: item.ticker)
    ]


@router.post("/api/portfolios/{portfolio_id}/consolidate", response_model=ConsolidationOut)
async def consolidate(
    portfolio_id: Id, state: State, session: DbSession, user: CurrentUser
) -> ConsolidationOut:
    """Consolidate the stored positions: positions counted, providers, last updated."""
    return _summary(await service(state, session, user).consolidate(portfolio_id, user_id=user.id))


@router.post("/api/users/{user_id}/consolidate-all", response_model=list[ConsolidationOut])
async def consolidate_all(
    user_id: Id, state: State, session: DbSession, user: CurrentUser
) -> list[ConsolidationOut]:
    """Every portfolio of the user (only the caller's own id is accepted)."""
    if user_id != user.id:
        raise NotFoundError(f"user {user_id} not found")
    return [_summary(s) for s in await service(state, session, user).consolidate_all(user.id)]


@router.get("/api/manual-positions", response_model=list[PositionOut])
async def list_manual(state: State, session: DbSession, user: CurrentUser) -> list[PositionOut]:
    positions = await AccountsView(session, policy=state.policy, clock=state.clock).positions(
        user.id
    )
    return [p for p in positions if p.provider == "manual"]


@router.post(
    "/api/manual-accounts",
    response_model=AccountOut,
    status_code=201,
    responses={422: {"description": "No name, or a bad currency code."}},
)
async def add_manual_account(
    body: ManualAccountIn, state: State, session: DbSession, user: CurrentUser
) -> AccountOut:
    """An account of the user's own for manual positions; it is never synced or refreshed."""
    account = await service(state, session, user).add_manual_account(
        user.id, name=body.name, currency=body.currency
    )
    return await AccountsView(session, policy=state.policy, clock=state.clock).account(
        user.id, account.id
    )


@router.post(
    "/api/manual-positions",
    response_model=PositionOut,
    status_code=201,
    responses={
        409: {
            "description": "The account already holds this ticker by hand and `on_existing` "
            "was not given (`manual_position_exists`)."
        }
    },
)
async def add_manual(
    body: ManualPositionIn, state: State, session: DbSession, user: CurrentUser
) -> PositionOut:
    row = await service(state, session, user).add_manual(
        user.id,
        ticker=body.ticker,
        quantity=body.quantity,
        currency=body.currency,
        kind=body.kind,
        cost_basis=body.cost_basis,
        price=body.price,
        value=body.value,
        account_id=body.account_id,
        on_existing=body.on_existing,
    )
    return position_out(row)


@router.patch("/api/manual-positions/{position_id}", response_model=PositionOut)
async def update_manual(
    position_id: Id,
    body: ManualPositionPatch,
    state: State,
    session: DbSession,
    user: CurrentUser,
) -> PositionOut:
    row = await service(state, session, user).update_manual(
        user.id,
        position_id,
        quantity=body.quantity,
        cost_basis=body.cost_basis,
        price=body.price,
        value=body.value,
        kind=body.kind,
    )
    return position_out(row)


@router.delete("/api/manual-positions/{position_id}", status_code=204)
async def remove_manual(
    position_id: Id, state: State, session: DbSession, user: CurrentUser
) -> None:
    await service(state, session, user).remove_manual(user.id, position_id)


@router.put("/api/duplicates/preference", response_model=PortfolioOut)
async def prefer_account(
    body: PreferIn, state: State, session: DbSession, user: CurrentUser
) -> PortfolioOut:
    """Resolve a duplicated account: keep `keep_account_id`, count its twins once through it."""
    duplicates = await service(state, session, user).duplicates(user.id)
    group = {
        key
        for d in duplicates
        for key in (d.winner.key, d.loser.key)
        if str(body.keep_account_id) in (d.winner.key, d.loser.key)
    }
    if not group:
        raise NotFoundError(f"account {body.keep_account_id} is not a duplicated account")
    prefs: dict[str, Any] = dict(user.preferences or {})
    chosen = dict(prefs.get("prefer_accounts") or {})
    for key in group:
        chosen[key] = str(body.keep_account_id)
    prefs["prefer_accounts"] = chosen
    user.preferences = prefs
    await session.flush()
    return await portfolio_out(state, session, user)
