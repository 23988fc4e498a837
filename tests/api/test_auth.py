"""Authentication on every route: bearer API tokens, the web session cookie, login and logout."""

from datetime import timedelta

import pytest

from brokerlink.api.deps import CSRF_HEADER, SESSION_COOKIE
from brokerlink.auth import AuthService
from tests.fixtures.api import ADMIN_ROUTES, PUBLIC_ROUTES, Route, api_routes, assert_error

pytestmark = pytest.mark.asyncio

# The one /api route that cannot need a token: it is how a browser gets one.
SIGN_IN = Route("POST", "/api/auth/login")
PASSWORD = "correct horse battery"


def _filled(route: Route) -> str:
    path = route.path
    for name in route.path_params:
        path = path.replace("{" + name + "}", "1" if name != "order_id" else "ord-1")
    return path


async def _all_refused(api, client) -> list[str]:
    wrong = []
    for route in api_routes(api.app):
        if route == SIGN_IN:
            continue
        response = await client.request(route.method, _filled(route), json={})
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        expected = (
            (404, "not_found")
            if (route.method, route.path) in ADMIN_ROUTES
            else (401, "not_authenticated")
        )
        if (response.status_code, code) != expected:
            wrong.append(f"{route}: {response.status_code} {response.text[:120]}")
    return wrong


class TestRoutesNeedAToken:
    async def test_the_route_list_is_read_from_the_app(self, api):
        routes = {str(r) for r in api_routes(api.app)}
        # A sample from each feature: if these are missing, the enumeration is broken.
        for expected in (
            "GET /api/accounts",
            "POST /api/connections",
            "DELETE /api/manual-positions/{position_id}",
            "POST /api/accounts/{account_id}/orders",
            "POST /api/plaid/exchange-public-token",
            "PUT /api/duplicates/preference",
        ):
            assert expected in routes
        assert len(routes) >= 35

    async def test_every_api_route_without_a_token_is_401_not_authenticated(self, api):
        wrong = await _all_refused(api, api.client())
        assert not wrong, "\n".join(wrong)

    async def test_the_public_routes_answer_without_a_token(self, api):
        client = api.client()
        for method, path in PUBLIC_ROUTES:
            response = await client.request(method, path)
            assert response.status_code == 200, (method, path, response.text)

    async def test_401_says_how_to_authenticate(self, api):
        response = await api.client().get("/api/accounts")
        assert_error(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"


class TestBearerToken:
    async def test_a_valid_token_is_accepted(self, api):
        user = await api.user()
        response = await user.get("/api/auth/me")
        assert response.status_code == 200
        assert response.json()["id"] == user.id
        assert response.json()["email"] == user.email

    async def test_an_unknown_token_is_refused_on_every_route(self, api):
        client = api.client("blk_api_" + "x" * 43)
        wrong = await _all_refused(api, client)
        assert not wrong, "\n".join(wrong)

    async def test_a_malformed_authorization_header_is_refused(self, api):
        for header in (
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "blk_api_abc",
            "Bearer " + "a" * 10_000,
        ):
            response = await api.client().get("/api/accounts", headers={"Authorization": header})
            assert_error(response, 401, "not_authenticated")

    async def test_a_revoked_token_is_refused(self, api):
        user = await api.user()
        async with api.state.sessionmaker() as session:
            await AuthService(session).revoke(user.token)
            await session.commit()
        assert_error(await user.get("/api/accounts"), 401, "not_authenticated")

    async def test_an_expired_token_is_refused(self, api):
        user = await api.user()
        async with api.state.sessionmaker() as session:
            issued = await AuthService(session, clock=api.clock).issue(
                user.id, kind="api", ttl=timedelta(hours=1)
            )
            await session.commit()
        client = api.client(issued.token)
        assert (await client.get("/api/accounts")).status_code == 200
        api.clock.advance(timedelta(hours=1, seconds=1))
        assert_error(await client.get("/api/accounts"), 401, "not_authenticated")

    async def test_a_session_token_is_not_an_api_token(self, api):
        user = await api.user(password=PASSWORD)
        login = await api.client().post(
            "/api/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        session_token = login.cookies[SESSION_COOKIE]
        response = await api.client(session_token).get("/api/accounts")
        assert_error(response, 401, "not_authenticated")


class TestLogin:
    async def test_login_sets_an_httponly_session_cookie(self, api):
        user = await api.user(password=PASSWORD)
        client = api.client()
        response = await client.post(
            "/api/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        assert response.json()["id"] == user.id
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=blk_ses_")
        assert "HttpOnly" in cookie
        assert "samesite=lax" in cookie.lower()
        me = await client.get("/api/auth/me")
        assert me.status_code == 200
        assert me.json()["id"] == user.id

    async def test_the_email_is_case_insensitive(self, api):
        user = await api.user(password=PASSWORD)
        response = await api.client().post(
            "/api/auth/login", json={"email": user.email.upper(), "password": PASSWORD}
        )
        assert response.status_code == 200

    async def test_a_wrong_password_is_401_invalid_credentials(self, api):
        user = await api.user(password=PASSWORD)
        response = await api.client().post(
            "/api/auth/login", json={"email": user.email, "password": "wrong horse battery"}
        )
        assert_error(response, 401, "invalid_credentials")
        assert SESSION_COOKIE not in response.cookies

    async def test_an_unknown_email_gets_the_same_answer(self, api):
        response = await api.client().post(
            "/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
        )
        assert_error(response, 401, "invalid_credentials")

    async def test_a_user_without_a_password_cannot_log_in(self, api):
        user = await api.user(password=None)
        response = await api.client().post(
            "/api/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert_error(response, 401, "invalid_credentials")

    async def test_a_nul_character_in_the_email_is_refused_not_a_500(self, api):
        response = await api.client().post(
            "/api/auth/login", json={"email": "a\x00b@example.com", "password": PASSWORD}
        )
        assert response.status_code in (401, 422), response.text
        assert_error(response, response.status_code)

    async def test_a_missing_field_is_named(self, api):
        response = await api.client().post("/api/auth/login", json={"email": "a@example.com"})
        assert_error(response, 422, "validation_error", field="password")

    async def test_a_cookie_write_needs_the_csrf_header(self, api):
        user = await api.user(password=PASSWORD)
        client = api.client()
        await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        body = {"ticker": "TSLA", "quantity": "1"}
        refused = await client.post("/api/manual-positions", json=body)
        assert_error(refused, 403, "csrf_required")
        allowed = await client.post("/api/manual-positions", json=body, headers={CSRF_HEADER: "1"})
        assert allowed.status_code == 201, allowed.text


class TestLogout:
    async def test_logout_revokes_the_session(self, api):
        user = await api.user(password=PASSWORD)
        client = api.client()
        login = await client.post(
            "/api/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        token = login.cookies[SESSION_COOKIE]
        response = await client.post("/api/auth/logout", headers={CSRF_HEADER: "1"})
        assert response.status_code == 204
        assert_error(await client.get("/api/auth/me"), 401, "not_authenticated")
        # The old cookie, replayed by someone who kept it, is dead too.
        replay = api.client()
        replay.cookies.set(SESSION_COOKIE, token)
        assert_error(await replay.get("/api/auth/me"), 401, "not_authenticated")

    async def test_logout_leaves_api_tokens_working(self, api):
        user = await api.user(password=PASSWORD)
        browser = api.client()
        await browser.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        await browser.post("/api/auth/logout", headers={CSRF_HEADER: "1"})
        assert (await user.get("/api/auth/me")).status_code == 200
