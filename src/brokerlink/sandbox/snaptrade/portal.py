"""The HTML connection portal behind `redirectURI` (`/portal/connect`).

GET shows a form (a brokerage select, or the one broker the login asked for) with hidden
`token` and `sessionId`; POST with `action=approve` creates the connection and its seeded
accounts, `action=decline` cancels. Both redirect (303) to the login's `customRedirect` with
`status`, `connection_id` and `broker`, or render a small result page when there is none. A
failure (the brokerage in maintenance, say) redirects with `status=ERROR` and `error_code`.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from starlette.responses import HTMLResponse, RedirectResponse, Response

from brokerlink.sandbox.snaptrade._routing import Ctx
from brokerlink.sandbox.snaptrade.state import ApiError, PortalSession

__all__ = ["portal_url", "show", "submit"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><main><h1>{title}</h1>{content}</main></body></html>
"""


def portal_url(base_url: str, session: PortalSession) -> str:
    query = {"token": session.token, "sessionId": session.id}
    if session.broker:
        query["broker"] = session.broker
    return f"{base_url}/portal/connect?{urlencode(query)}"


def _page(title: str, content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), content=content), status)


def _error_page(err: ApiError) -> HTMLResponse:
    return _page("Connection portal", f'<p class="error">{escape(err.detail)}</p>', err.status)


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


async def show(ctx: Ctx) -> Response:
    try:
        session = ctx.state.portal_session(
            ctx.query.get("token", ""), ctx.query.get("sessionId", "")
        )
    except ApiError as err:
        return _error_page(err)
    hidden = (
        f'<input type="hidden" name="token" value="{escape(session.token)}">'
        f'<input type="hidden" name="sessionId" value="{escape(session.id)}">'
    )
    if session.broker:
        brokerage = ctx.state.brokerages[session.broker]
        picker = (
            f'<input type="hidden" name="broker" value="{escape(brokerage.slug)}">'
            f"<p>Connect to <strong>{escape(brokerage.display_name)}</strong></p>"
        )
    else:
        options = "".join(
            f'<option value="{escape(b.slug)}">{escape(b.display_name)}</option>'
            for b in ctx.state.brokerages.values()
            # A trade-only link offers only the brokerages that can trade.
            if b.available and (b.allows_trading or session.connection_type != "trade")
        )
        picker = f'<label>Brokerage <select name="broker">{options}</select></label>'
    verb = "Reconnect" if session.reconnect else "Connect"
    form = (
        f'<form method="post" action="/portal/connect">{hidden}{picker}'
        f"<p>Access: {escape(session.connection_type)}</p>"
        f'<button type="submit" name="action" value="approve">{verb}</button> '
        '<button type="submit" name="action" value="decline">Cancel</button></form>'
    )
    return _page("SnapTrade sandbox: connect a brokerage", form)


async def submit(ctx: Ctx) -> Response:
    raw = (await ctx.request.body()).decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    state = ctx.state
    try:
        session = state.portal_session(form.get("token", ""), form.get("sessionId", ""))
    except ApiError as err:
        return _error_page(err)
    try:
        broker = session.broker or form.get("broker", "")
        if form.get("action", "approve") == "decline":
            session.used = True
            params = {"status": "CANCELLED", "broker": broker}
            content = "<p>Connection cancelled.</p>"
        else:
            if not broker:
                raise ApiError(400, "1012", "Choose a brokerage")
            if session.reconnect:
                auth = state.reconnect(
                    session.user_id, session.reconnect, session.connection_type, broker
                )
            else:
                auth = state.create_connection(session.user_id, broker, session.connection_type)
            session.used = True
            params = {"status": "SUCCESS", "connection_id": auth.id, "broker": auth.slug}
            content = f'<p>Connected. Connection id <code id="connection-id">{auth.id}</code></p>'
    except ApiError as err:
        # Back to the app with the failure, as the real portal does.
        if not session.custom_redirect:
            return _error_page(err)
        session.used = True
        failed = {"status": "ERROR", "error_code": err.code, "broker": form.get("broker", "")}
        return RedirectResponse(_with_query(session.custom_redirect, failed), status_code=303)
    if session.custom_redirect:
        return RedirectResponse(_with_query(session.custom_redirect, params), status_code=303)
    return _page(f"Connection {params['status'].lower()}", content)
