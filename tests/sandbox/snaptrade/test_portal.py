"""The connection portal end to end: login link, HTML form, POST, 303 back to the app."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest


class _Form(HTMLParser):
    """Collects the first form's action, hidden inputs, select options and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.options: list[str] = []
        self.buttons: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action") or ""
        elif tag == "input":
            self.fields[a["name"]] = a.get("value") or ""
        elif tag == "option":
            self.options.append(a["value"])
        elif tag == "button":
            self.buttons.append((a["name"], a["value"]))


async def _login(api, user, **body) -> str:
    r = await api.post("/snapTrade/login", user=user, json_body=body)
    assert r.status_code == 200, r.text
    return r.json()["redirectURI"]


async def _open(http, url: str) -> _Form:
    r = await http.get(url)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    form = _Form()
    form.feed(r.text)
    return form


class TestPortal:
    @pytest.mark.asyncio
    async def test_approve_redirects_with_connection(self, api, http, user):
        url = await _login(
            api, user, broker="SCHWAB", connectionType="trade", customRedirect="https://app.test/cb"
        )
        form = await _open(http, url)
        assert form.fields["broker"] == "SCHWAB"
        assert ("action", "decline") in form.buttons
        r = await http.post(form.action, data={**form.fields, "action": "approve"})
        assert r.status_code == 303
        target = urlsplit(r.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == "https://app.test/cb"
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert query["status"] == "SUCCESS"
        assert query["broker"] == "SCHWAB"
        auth = (await api.get(f"/authorizations/{query['connection_id']}", user=user)).json()
        assert auth["type"] == "trade"
        accounts = (await api.get("/accounts", user=user)).json()
        assert any(a["brokerage_authorization"] == query["connection_id"] for a in accounts)

    @pytest.mark.asyncio
    async def test_broker_select_and_success_page(self, api, http, user):
        url = await _login(api, user)
        form = await _open(http, url)
        assert "FIDELITY" in form.options
        r = await http.post(form.action, data={**form.fields, "broker": "FIDELITY"})
        assert r.status_code == 200
        assert "connection-id" in r.text
        auths = (await api.get("/authorizations", user=user)).json()
        assert [a["brokerage"]["slug"] for a in auths] == ["FIDELITY"]

    @pytest.mark.asyncio
    async def test_trade_link_offers_only_trading_brokerages(self, api, http, user):
        form = await _open(http, await _login(api, user, connectionType="trade"))
        assert "SCHWAB" in form.options
        assert "FIDELITY" not in form.options

    @pytest.mark.asyncio
    async def test_decline_redirects_cancelled(self, api, http, user):
        url = await _login(api, user, broker="ALPACA", customRedirect="https://app.test/cb?x=1")
        form = await _open(http, url)
        r = await http.post(form.action, data={**form.fields, "action": "decline"})
        assert r.status_code == 303
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert query["status"] == ["CANCELLED"]
        assert query["x"] == ["1"]
        assert (await api.get("/authorizations", user=user)).json() == []

    @pytest.mark.asyncio
    async def test_link_is_single_use_and_expires(self, api, http, user, clock):
        url = await _login(api, user, broker="SCHWAB")
        form = await _open(http, url)
        await http.post(form.action, data={**form.fields, "action": "approve"})
        assert (await http.get(url)).status_code == 410
        url = await _login(api, user, broker="SCHWAB")
        clock.advance(301)
        assert (await http.get(url)).status_code == 410

    @pytest.mark.asyncio
    async def test_reconnect_reenables(self, api, http, user, schwab, state):
        state.disable_authorization(schwab["id"])
        url = await _login(api, user, reconnect=schwab["id"])
        form = await _open(http, url)
        r = await http.post(form.action, data={**form.fields, "action": "approve"})
        assert r.status_code == 200
        auth = (await api.get(f"/authorizations/{schwab['id']}", user=user)).json()
        assert auth["disabled"] is False

    @pytest.mark.asyncio
    async def test_portal_follows_redirect_with_httpx(self, api, http, user):
        url = await _login(api, user, broker="ETRADE", customRedirect="http://sandbox.test/")
        form = await _open(http, url)
        r = await http.post(
            form.action, data={**form.fields, "action": "approve"}, follow_redirects=True
        )
        assert r.status_code == 200
        assert r.json()["online"] is True
        assert r.history[0].status_code == 303

    @pytest.mark.asyncio
    async def test_bad_token_is_404(self, http):
        r = await http.get("/portal/connect?token=nope&sessionId=nope")
        assert r.status_code == 404


class TestPortalFailure:
    @pytest.mark.asyncio
    async def test_a_failure_goes_back_to_the_app_with_its_code(self, api, http, user, app):
        url = await _login(api, user, broker="SCHWAB", customRedirect="https://app.test/cb")
        form = await _open(http, url)
        app.state.sandbox.brokerages["SCHWAB"].maintenance_mode = True
        r = await http.post(form.action, data={**form.fields, "action": "approve"})
        assert r.status_code == 303
        params = parse_qs(urlsplit(r.headers["location"]).query)
        assert params["status"] == ["ERROR"]
        assert params["error_code"] == ["1012"]
        assert "connection_id" not in params
        assert app.state.sandbox.user_authorizations(user.user_id) == []
