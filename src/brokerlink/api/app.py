"""The FastAPI application: the JSON API under /api, the web app, the providers' callbacks.

create_app(state)            tests and embedders hand in an `AppState`
create_app(settings=…)       the lifespan builds the state from settings

Request bodies over `max_body_bytes` (the setting `BROKERLINK_MAX_BODY_BYTES`, 1 MiB by default)
are refused with 413 by the outermost middleware, before any route or authentication runs.
The documentation pages (/docs, /redoc) load nothing from outside the app (`docs.py`).
`GET /metrics` (Prometheus) answers only the bearer token `BROKERLINK_METRICS_TOKEN`, else 404
(`observability/scrape.py`); tests and embedders hand in their own `MetricsEndpoint`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel

from brokerlink.accounts.routes import router as accounts_router
from brokerlink.api.docs import install_docs
from brokerlink.api.exception_handlers import install_exception_handlers
from brokerlink.api.middleware import DEFAULT_MAX_BODY_BYTES, BodyLimit
from brokerlink.api.openapi import install_openapi
from brokerlink.api.state import AppState, open_state
from brokerlink.auth.routes import router as auth_router
from brokerlink.config import Settings
from brokerlink.connections.compat import router as compat_router
from brokerlink.connections.routes import pages as connect_pages
from brokerlink.connections.routes import router as connections_router
from brokerlink.connections.routes import sync_router
from brokerlink.observability.scrape import MetricsEndpoint, install_metrics
from brokerlink.operator.routes import pages as operator_pages
from brokerlink.operator.routes import router as operator_router
from brokerlink.orders.routes import router as orders_router
from brokerlink.portfolio.routes import router as portfolio_router
from brokerlink.routing.routes import router as institutions_router
from brokerlink.webhooks.routes import router as webhooks_router

__all__ = ["create_app"]


class Health(BaseModel):
    status: str
    providers: list[str]


def create_app(
    state: AppState | None = None,
    *,
    settings: Settings | None = None,
    snaptrade_url: str | None = None,
    plaid_url: str | None = None,
    public_url: str | None = None,
    web: bool = True,
    max_body_bytes: int | None = None,
    sandbox: bool = False,
    metrics: MetricsEndpoint | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state is not None:
            app.state.brokerlink = state
            yield
            return
        assert settings is not None, "create_app needs an AppState or settings"
        async with open_state(
            settings,
            snaptrade_url=snaptrade_url,
            plaid_url=plaid_url,
            public_url=public_url,
            sandbox=sandbox,
        ) as built:
            app.state.brokerlink = built
            app.state.metrics = _metrics_endpoint(settings, built)
            yield

    app = FastAPI(
        title="brokerlink",
        summary="Brokerage and bank accounts through SnapTrade and Plaid, behind one interface.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    if state is not None:
        app.state.brokerlink = state  # usable without running the lifespan (ASGI transport)
    app.state.metrics = metrics
    install_exception_handlers(app)

    @app.get("/health", response_model=Health, tags=["health"])
    async def health() -> Health:
        current: AppState = app.state.brokerlink
        return Health(status="ok", providers=[p.value for p in current.connectors.by_provider()])

    for router in (
        auth_router,
        institutions_router,
        connections_router,
        sync_router,
        accounts_router,
        portfolio_router,
        orders_router,
        compat_router,
        connect_pages,
        operator_router,
        operator_pages,
        webhooks_router,
    ):
        app.include_router(router)
    if web:
        from brokerlink.web.routes import install_web

        install_web(app)
    install_metrics(app)
    install_openapi(app)
    install_docs(app)
    if max_body_bytes is None:
        max_body_bytes = settings.max_body_bytes if settings is not None else DEFAULT_MAX_BODY_BYTES
    # Added last, so it is the outermost of the app's middleware: it runs before anything else.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def _metrics_endpoint(settings: Settings, state: AppState) -> MetricsEndpoint | None:
    if settings.metrics_token is None:
        return None
    queue = None
    if settings.queue_url:
        from brokerlink.worker import QUEUE

        queue = QUEUE
    return MetricsEndpoint(
        token=settings.metrics_token,
        reads=state.reads,
        queue_url=settings.queue_url,
        queue=queue or "brokerlink.sync",
        cache_seconds=settings.metrics_cache_seconds,
    )
