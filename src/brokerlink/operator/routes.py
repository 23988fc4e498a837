"""The operator dashboard: `/operator` (the page) and `/api/operator/summary` (its figures).

Both are for admins only (`brokerlink users admin EMAIL`). Anyone else, signed in or not, gets
the answer an unknown address gets (404 `not_found`), so neither can be discovered.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.api.deps import DbSession, State, optional_user
from brokerlink.api.openapi import SECURITY
from brokerlink.api.state import AppState
from brokerlink.errors import NotFoundError
from brokerlink.models import User
from brokerlink.operator.page import duration, operator_page, rate
from brokerlink.operator.schemas import OperatorSummary
from brokerlink.operator.service import OperatorService
from brokerlink.web.routes import templates

__all__ = ["pages", "router"]

router = APIRouter(tags=["operator"])
pages = APIRouter(include_in_schema=False)

_HIDDEN = "Not Found"  # what Starlette says for an address it has no route for


async def operator(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None or not user.is_admin:
        raise NotFoundError(_HIDDEN)
    return user


Operator = Annotated[User, Depends(operator)]


def _service(state: AppState, session: AsyncSession) -> OperatorService:
    """The figures as the schedule sees missing webhooks (its threshold and providers)."""
    schedule = state.syncs.schedule
    return OperatorService(
        session,
        clock=state.clock,
        missing_after=schedule.missing_webhook_after,
        webhook_providers=schedule.webhooks or None,
    )


@router.get(
    "/api/operator/summary",
    response_model=OperatorSummary,
    responses={
        404: {
            "description": "Not found (`not_found`) for anyone but an admin, signed in or not, "
            "as for an unknown address."
        }
    },
    openapi_extra={"security": SECURITY},
)
async def operator_summary(state: State, session: DbSession, user: Operator) -> OperatorSummary:
    """The operator dashboard's figures: provider success rates over 1 h and 24 h, staleness
    per provider, refresh volume and cost per day for 14 days, broken connections, recent
    errors, webhook lag and accounts missing webhooks. Admins only."""
    return await _service(state, session).summary()


@pages.get("/operator", response_class=HTMLResponse)
async def operator_dashboard(
    request: Request, state: State, session: DbSession, user: Operator
) -> Response:
    summary = await _service(state, session).summary()
    return templates.TemplateResponse(
        request,
        "operator.html",
        {
            "user": user,
            "path": request.url.path,
            "page": operator_page(summary),
            "duration": duration,
            "rate": rate,
        },
        headers={"Cache-Control": "no-store"},
    )
