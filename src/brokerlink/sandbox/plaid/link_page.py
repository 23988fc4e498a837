"""HTML of the Hosted Link page: choose an institution, log in with the sandbox credentials.

Leaving without linking (Cancel, or an error the user cannot get past on the page)
ends the session with an `exit` and returns to the completion redirect, as Hosted Link does;
the sandbox adds `status` (CANCELLED or EXITED) and `error_code` to that address so the page
behind it can tell the user what happened without a round trip.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode, urlsplit, urlunsplit

from brokerlink.sandbox.plaid.errors import PlaidError
from brokerlink.sandbox.plaid.state import LinkToken, PlaidSandboxState

__all__ = ["done_page", "exit_redirect", "exited_page", "expired_page", "login_page", "retryable"]

# Errors Link lets the user correct on the same page; any other ends the session.
_RETRYABLE = frozenset({"INVALID_CREDENTIALS", "INVALID_MFA", "INVALID_FIELD"})

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;color:#111}"
    "label{display:block;margin:.75rem 0 .25rem}input,select{width:100%;padding:.4rem}"
    "button{margin-top:1rem;padding:.5rem 1rem}.error{color:#a00;border:1px solid #a00;"
    "padding:.5rem}.hint{color:#555;font-size:.9rem}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def login_page(
    state: PlaidSandboxState,
    token: LinkToken,
    error: PlaidError | None,
    *,
    selected: str | None = None,
) -> str:
    institutions = state.link_institutions(token)
    parts: list[str] = [f"<p>{escape(token.client_name)} uses Plaid to connect your account.</p>"]
    if error is not None:
        message = error.display_message or error.error_message
        parts.append(
            f"<p class='error' role='alert' data-error-code='{escape(error.error_code)}'>"
            f"{escape(error.error_code)}: {escape(message)}</p>"
        )
    parts.append("<form method='post'>")
    if len(institutions) == 1:
        inst = institutions[0]
        parts.append(
            f"<p>Institution: <strong>{escape(inst.name)}</strong></p>"
            f"<input type='hidden' name='institution_id' value='{escape(inst.institution_id)}'>"
        )
    else:
        options = "".join(
            f"<option value='{escape(i.institution_id)}'"
            f"{' selected' if i.institution_id == selected else ''}>{escape(i.name)}</option>"
            for i in institutions
        )
        parts.append(
            "<label for='institution_id'>Institution</label>"
            f"<select id='institution_id' name='institution_id' required>{options}</select>"
        )
    parts.append(
        "<label for='username'>Username</label>"
        "<input id='username' name='username' autocomplete='off' required>"
        "<label for='password'>Password</label>"
        "<input id='password' name='password' type='password' required>"
        "<p class='hint'>Sandbox credentials: user_good / pass_good</p>"
        "<button type='submit'>Submit</button></form>"
        # Its own form after the first: a client filling in the first form never presses it.
        "<form method='post'><input type='hidden' name='action' value='exit'>"
        "<button type='submit' class='cancel'>Cancel</button></form>"
    )
    title = "Reconnect your account" if token.update_item_id else "Connect your account"
    return _page(title, "".join(parts))


def done_page(token: LinkToken) -> str:
    return _page(
        "Success",
        "<p id='done'>Your account is connected. You can close this window and return to "
        f"{escape(token.client_name)}.</p>",
    )


def expired_page(error: PlaidError) -> str:
    return _page(
        "Link expired",
        f"<p class='error' data-error-code='{escape(error.error_code)}'>"
        f"{escape(error.error_message)}</p>",
    )


def retryable(state: PlaidSandboxState, token: LinkToken, error: PlaidError) -> bool:
    """Whether the user can get past `error` on this page: correct what they typed, or choose
    another institution. Otherwise Link ends the session (an exit with the error)."""
    if error.error_code in _RETRYABLE:
        return True
    return token.completion_redirect_uri is None or len(state.link_institutions(token)) > 1


def exit_redirect(
    state: PlaidSandboxState, token: LinkToken, error: PlaidError | None
) -> str | None:
    """End the session without an Item; the address to return to, if the token has one."""
    state.exit_link(token, error)
    target = token.completion_redirect_uri
    if target is None:
        return None
    params = {"status": "EXITED", "error_code": error.error_code} if error else {}
    parts = urlsplit(target)
    query = urlencode(params or {"status": "CANCELLED"})
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


def exited_page(token: LinkToken, error: PlaidError | None) -> str:
    what = "" if error is None else f" ({escape(error.error_code)})"
    return _page(
        "Exited",
        f"<p id='exited'>Nothing was connected{what}. You can close this window and return "
        f"to {escape(token.client_name)}.</p>",
    )
