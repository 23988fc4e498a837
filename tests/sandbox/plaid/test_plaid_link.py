"""Link tokens, the Hosted Link page and update mode."""

from __future__ import annotations

import re

import pytest

from tests.sandbox.plaid.conftest import AUTH

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("check_webhooks")]

LINK = {
    "client_name": "brokerlink",
    "language": "en",
    "country_codes": ["US"],
    "user": {"client_user_id": "user-1"},
}


class TestLinkTokenCreate:
    async def test_plain_token(self, api):
        body = await api.ok("/link/token/create", {**LINK, "products": ["investments"]})
        assert body["link_token"].startswith("link-sandbox-")
        assert "hosted_link_url" not in body

    async def test_hosted_link_url_points_at_this_server(self, api):
        body = await api.ok(
            "/link/token/create",
            {**LINK, "products": ["investments"], "hosted_link": {}, "webhook": "https://h.test/w"},
        )
        assert body["hosted_link_url"] == f"http://plaid.test/hosted-link/{body['link_token']}"

    async def test_missing_user(self, api):
        err = await api.error(
            "/link/token/create",
            {k: v for k, v in LINK.items() if k != "user"} | {"products": ["auth"]},
        )
        assert err["error_code"] == "MISSING_FIELDS"
        assert "user" in err["error_message"]

    async def test_missing_client_name(self, api):
        body = {k: v for k, v in LINK.items() if k != "client_name"}
        err = await api.error("/link/token/create", body | {"products": ["auth"]})
        assert (err["error_type"], err["error_code"]) == ("INVALID_REQUEST", "MISSING_FIELDS")

    @pytest.mark.parametrize(
        "extra",
        [
            {"products": ["stocks"]},
            {"products": ["balance"]},
            {"products": []},
            {"products": ["auth"], "country_codes": ["XX"]},
            {"products": ["auth"], "redirect_uri": "https://app.test/cb?x=1"},
        ],
    )
    async def test_invalid_fields(self, api, extra):
        err = await api.error("/link/token/create", {**LINK, **extra})
        assert (err["error_type"], err["error_code"]) == ("INVALID_REQUEST", "INVALID_FIELD")

    async def test_update_mode_needs_a_valid_access_token(self, api):
        err = await api.error("/link/token/create", {**LINK, "access_token": "access-sandbox-nope"})
        assert err["error_code"] == "INVALID_ACCESS_TOKEN"


class TestLinkTokenGet:
    async def test_fresh_token_has_no_sessions(self, api):
        token = (await api.ok("/link/token/create", {**LINK, "products": ["auth"]}))["link_token"]
        body = await api.ok("/link/token/get", {"link_token": token})
        assert body["link_sessions"] == []
        assert body["metadata"]["initial_products"] == ["auth"]

    async def test_unknown_token(self, api):
        err = await api.error("/link/token/get", {"link_token": "link-sandbox-unknown"})
        assert err["error_code"] == "INVALID_LINK_TOKEN"


async def _hosted(api, **extra):
    body = await api.ok(
        "/link/token/create", {**LINK, "products": ["investments"], "hosted_link": extra}
    )
    return body["link_token"], body["hosted_link_url"]


class TestHostedLink:
    async def test_end_to_end(self, api, http):
        token, url = await _hosted(api)
        page = await http.get(url)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        # Only institutions offering investments are offered.
        assert "ins_115616" in page.text
        assert "ins_127989" not in page.text

        bad = await http.post(
            url, data={"institution_id": "ins_115616", "username": "user_good", "password": "x"}
        )
        assert bad.status_code == 400
        assert 'data-error-code="INVALID_CREDENTIALS"' in bad.text.replace("'", '"')

        pending = await api.ok("/link/token/get", {"link_token": token})
        events = [e["event_name"] for e in pending["link_sessions"][0]["events"]]
        assert "ERROR" in events
        assert "results" not in pending["link_sessions"][0]

        good = await http.post(
            url,
            data={"institution_id": "ins_115616", "username": "user_good", "password": "pass_good"},
        )
        assert good.status_code == 200
        assert "connected" in good.text

        body = await api.ok("/link/token/get", {"link_token": token})
        [session] = body["link_sessions"]
        [result] = session["results"]["item_add_results"]
        assert result["institution"] == {"name": "Vanguard", "institution_id": "ins_115616"}
        assert {a["subtype"] for a in result["accounts"]} == {"brokerage", "roth"}
        assert session["events"][-1]["event_name"] == "HANDOFF"

        exchanged = await api.ok(
            "/item/public_token/exchange", {"public_token": result["public_token"]}
        )
        holdings = await api.ok(
            "/investments/holdings/get", {"access_token": exchanged["access_token"]}
        )
        assert len(holdings["accounts"]) == 2

        # The page now says it is done rather than starting another session.
        again = await http.get(url)
        assert "connected" in again.text

    async def test_completion_redirect(self, api, http):
        token, url = await _hosted(api, completion_redirect_uri="https://app.test/linked")
        response = await http.post(
            url,
            data={"institution_id": "ins_109508", "username": "user_good", "password": "pass_good"},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "https://app.test/linked"

    async def test_simulated_institution_error(self, api, http):
        _, url = await _hosted(api)
        response = await http.post(
            url,
            data={
                "institution_id": "ins_109508",
                "username": "user_good",
                "password": "error_INSTITUTION_DOWN",
            },
        )
        assert response.status_code == 400
        assert "INSTITUTION_DOWN" in response.text

    async def test_institution_without_the_product_is_refused(self, api, http):
        _, url = await _hosted(api)
        response = await http.post(
            url,
            data={"institution_id": "ins_12", "username": "user_good", "password": "pass_good"},
        )
        assert response.status_code == 400
        assert "PRODUCTS_NOT_SUPPORTED" in response.text

    async def test_expired_and_unknown_links(self, api, http, clock):
        _, url = await _hosted(api, url_lifetime_seconds=60)
        clock.advance(61)
        assert (await http.get(url)).status_code == 404
        assert (await http.get("/hosted-link/link-sandbox-nope")).status_code == 404
        posted = await http.post(url, data={"username": "user_good", "password": "pass_good"})
        assert posted.status_code == 404


class TestUpdateMode:
    async def test_repairs_item_login_required(self, api, http):
        item = await api.link_item()
        access = {"access_token": item["access_token"]}
        assert (await api.ok("/sandbox/item/reset_login", access))["reset_login"] is True
        err = await api.error("/investments/holdings/get", access)
        assert err["error_code"] == "ITEM_LOGIN_REQUIRED"

        created = await api.ok(
            "/link/token/create", {**LINK, "access_token": item["access_token"], "hosted_link": {}}
        )
        page = await http.get(created["hosted_link_url"])
        assert "First Platypus Bank" in page.text
        assert "<select" not in page.text
        # Single institution: the form carries it, so no choice is needed.
        institution = re.search(r"name='institution_id' value='([^']+)'", page.text)
        assert institution
        assert institution.group(1) == "ins_109508"
        done = await http.post(
            created["hosted_link_url"], data={"username": "user_good", "password": "pass_good"}
        )
        assert done.status_code == 200

        await api.ok("/investments/holdings/get", access)
        item_body = await api.ok("/item/get", access)
        assert item_body["item"]["error"] is None
        session = (await api.ok("/link/token/get", {"link_token": created["link_token"]}))[
            "link_sessions"
        ][0]
        assert session["results"]["item_add_results"] == []


async def test_credentials_in_headers_work_for_link(http):
    response = await http.post(
        "/link/token/create",
        json={**LINK, "products": ["auth"]},
        headers={"PLAID-CLIENT-ID": AUTH["client_id"], "PLAID-SECRET": AUTH["secret"]},
    )
    assert response.status_code == 200


async def test_hosted_link_sends_session_finished(api, http, state):
    created = await api.ok(
        "/link/token/create",
        {**LINK, "products": ["investments"], "hosted_link": {}, "webhook": "https://app.test/w"},
    )
    await http.post(
        created["hosted_link_url"],
        data={"institution_id": "ins_56", "username": "user_good", "password": "pass_good"},
    )
    url, body = state.webhooks[-1]
    assert url == "https://app.test/w"
    assert (body["webhook_type"], body["webhook_code"], body["status"]) == (
        "LINK",
        "SESSION_FINISHED",
        "SUCCESS",
    )
    assert body["link_token"] == created["link_token"]
    [public_token] = body["public_tokens"]
    await api.ok("/item/public_token/exchange", {"public_token": public_token})


async def test_fixed_institution_skips_the_choice(api, http):
    # `institution_id` on /link/token/create is this sandbox's extension for a preset bank.
    created = await api.ok(
        "/link/token/create",
        {**LINK, "products": ["investments"], "hosted_link": {}, "institution_id": "ins_116912"},
    )
    page = await http.get(created["hosted_link_url"])
    assert "Empower Retirement" in page.text
    assert "<select" not in page.text
    done = await http.post(
        created["hosted_link_url"], data={"username": "user_good", "password": "pass_good"}
    )
    assert done.status_code == 200
    body = await api.ok("/link/token/get", {"link_token": created["link_token"]})
    [result] = body["link_sessions"][0]["results"]["item_add_results"]
    assert result["institution"]["institution_id"] == "ins_116912"


class TestHostedLinkExit:
    """Leaving Hosted Link without an Item ends the session with an `exit` and goes back to
    the completion redirect with what happened."""

    async def test_cancel_returns_cancelled(self, api, http):
        token, url = await _hosted(api, completion_redirect_uri="https://app.test/cb")
        await http.get(url)
        response = await http.post(url, data={"action": "exit"})
        assert response.status_code == 303
        assert response.headers["location"] == "https://app.test/cb?status=CANCELLED"
        session = (await api.ok("/link/token/get", {"link_token": token}))["link_sessions"][0]
        assert session["exit"]["error"] is None
        assert session["finished_at"] is not None
        assert "results" not in session

    async def test_an_error_at_the_one_institution_offered_exits_with_its_code(self, api, http):
        body = await api.ok(
            "/link/token/create",
            {
                **LINK,
                "products": ["investments"],
                "institution_id": "ins_12",
                "hosted_link": {"completion_redirect_uri": "https://app.test/cb?x=1"},
            },
        )
        url = body["hosted_link_url"]
        response = await http.post(url, data={"username": "user_good", "password": "pass_good"})
        assert response.status_code == 303
        assert response.headers["location"] == (
            "https://app.test/cb?x=1&status=EXITED&error_code=PRODUCTS_NOT_SUPPORTED"
        )
        got = await api.ok("/link/token/get", {"link_token": body["link_token"]})
        assert got["link_sessions"][0]["exit"]["error"]["error_code"] == "PRODUCTS_NOT_SUPPORTED"

    async def test_wrong_credentials_stay_on_the_page(self, api, http):
        body = await api.ok(
            "/link/token/create",
            {
                **LINK,
                "products": ["investments"],
                "institution_id": "ins_115616",
                "hosted_link": {"completion_redirect_uri": "https://app.test/cb"},
            },
        )
        url = body["hosted_link_url"]
        response = await http.post(url, data={"username": "user_good", "password": "nope"})
        assert response.status_code == 400
        assert "INVALID_CREDENTIALS" in response.text
        assert "name='action' value='exit'" in response.text
