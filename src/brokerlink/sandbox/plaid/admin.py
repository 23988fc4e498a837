"""The Plaid sandbox's admin routes, under `/sandbox-admin/` (outside Plaid's paths).

GET  status                   items, link tokens, institutions, rate-limited paths, and the
                              kid that signs webhooks now
GET|PUT|DELETE faults         the app-wide fault configuration
GET|DELETE requests           requests that reached the sandbox, per operation
GET  webhooks                 the webhook outbox
DELETE rate-limits            forget every rate-limit window
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from brokerlink.sandbox._faults import FaultConfig, FaultInjector
from brokerlink.sandbox.plaid.state import PlaidSandboxState

__all__ = ["add_admin_routes"]


def add_admin_routes(app: FastAPI) -> None:
    @app.get("/sandbox-admin/status")
    async def status(request: Request) -> JSONResponse:
        state: PlaidSandboxState = request.app.state.sandbox
        return JSONResponse(
            {
                "online": True,
                "items": len(state.items),
                "link_tokens": len(state.link_tokens),
                "institutions": sorted(state.institutions),
                "rate_limits": sorted(state.rate_limits),
                "webhook_key_id": state.signer.kid,
            }
        )

    @app.get("/sandbox-admin/faults")
    async def get_faults(request: Request) -> JSONResponse:
        injector: FaultInjector = request.app.state.sandbox.faults
        return JSONResponse(injector.config.model_dump())

    @app.put("/sandbox-admin/faults")
    async def put_faults(request: Request) -> JSONResponse:
        injector: FaultInjector = request.app.state.sandbox.faults
        try:
            config = FaultConfig.model_validate_json(await request.body())
        except ValidationError as e:
            detail = [{"loc": list(x["loc"]), "msg": x["msg"]} for x in e.errors()]
            return JSONResponse({"detail": detail}, status_code=422)
        injector.configure(config)
        return JSONResponse(injector.config.model_dump())

    @app.delete("/sandbox-admin/faults", status_code=204)
    async def delete_faults(request: Request) -> Response:
        request.app.state.sandbox.faults.reset()
        return Response(status_code=204)

    @app.get("/sandbox-admin/webhooks")
    async def get_webhooks(request: Request) -> JSONResponse:
        state: PlaidSandboxState = request.app.state.sandbox
        return JSONResponse([{"url": url, "body": body} for url, body in state.webhooks])

    @app.delete("/sandbox-admin/rate-limits", status_code=204)
    async def reset_rate_limits(request: Request) -> Response:
        request.app.state.sandbox.reset_rate_limits()
        return Response(status_code=204)

    @app.get("/sandbox-admin/requests")
    async def get_requests(request: Request) -> JSONResponse:
        state: PlaidSandboxState = request.app.state.sandbox
        return JSONResponse(state.requests.as_json())

    @app.delete("/sandbox-admin/requests")
    async def delete_requests(request: Request) -> JSONResponse:
        state: PlaidSandboxState = request.app.state.sandbox
        state.requests.reset()
        return JSONResponse(state.requests.as_json())
