"""The API's documentation pages, with every file they load served by the app itself.

    /docs                     Swagger UI on /openapi.json
    /docs/oauth2-redirect     Swagger UI's OAuth2 redirect page
    /static-docs/...          the script, style sheet and icon the page loads

FastAPI's own pages load Swagger UI from a CDN, so offline /docs is blank. The files come from
the `fastapi-offline` package (MIT; Swagger UI itself is Apache-2.0), which ships them as
package data: upgrading them is a dependency bump, not a vendored copy to keep. There is no
/redoc: ReDoc's page loads its logo from its own CDN whatever it is given.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "DOCS_STATIC", "install_docs"]

DOCS_STATIC = "/static-docs"
ASSETS = Path(str(files("fastapi_offline") / "static"))
_OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def install_docs(app: FastAPI) -> None:
    """Serve /docs from local files. The app is built with docs_url=None."""
    app.mount(DOCS_STATIC, StaticFiles(directory=ASSETS), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            oauth2_redirect_url=f"{root}{_OAUTH2_REDIRECT}",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
        )

    @app.get(_OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
