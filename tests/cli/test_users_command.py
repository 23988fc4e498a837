"""`brokerlink users create` and `brokerlink tokens create|list|revoke` on the embedded store."""

import asyncio

from typer.testing import CliRunner

from brokerlink.auth import AuthService, NotAuthenticated
from brokerlink.cli import app
from brokerlink.config import Settings, get_settings
from brokerlink.db.session import create_engine, create_sessionmaker


def _invoke(*args: str, **env: str):
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env})
    finally:
        get_settings.cache_clear()


def _authenticate(token: str):
    async def main():
        engine = create_engine(Settings().database_url_resolved)
        try:
            async with create_sessionmaker(engine)() as session:
                return await AuthService(session).authenticate(token)
        finally:
            await engine.dispose()

    return asyncio.run(main())


class TestUsersCreate:
    def test_creates_a_user_who_can_get_a_working_token(self):
        made = _invoke("users", "create", "--email", "Ada@Example.com", "--password", "s3cret-pass")
        assert made.exit_code == 0, made.output
        assert "<ada@example.com>" in made.output

        issued = _invoke("tokens", "create", "--email", "ada@example.com", "--name", "script")
        assert issued.exit_code == 0, issued.output
        token = next(w for w in issued.output.split() if w.startswith("blk_api_"))
        assert _authenticate(token).email == "ada@example.com"

    def test_a_second_user_with_the_same_email_is_refused(self):
        assert _invoke("users", "create", "--email", "a@b.co", "--no-password").exit_code == 0
        again = _invoke("users", "create", "--email", "A@B.co", "--no-password")
        assert again.exit_code == 1
        assert "exists" in again.output

    def test_a_short_password_is_refused(self):
        made = _invoke("users", "create", "--email", "c@d.co", "--password", "short")
        assert made.exit_code == 1
        assert "at least 8" in made.output


class TestTokens:
    def test_list_never_shows_the_token_and_revoke_stops_it(self):
        _invoke("users", "create", "--email", "e@f.co", "--no-password")
        issued = _invoke("tokens", "create", "--email", "e@f.co")
        token = next(w for w in issued.output.split() if w.startswith("blk_api_"))

        listed = _invoke("tokens", "list", "--email", "e@f.co")
        assert listed.exit_code == 0, listed.output
        assert token not in listed.output
        assert "cli" in listed.output

        revoked = _invoke("tokens", "revoke", "--email", "e@f.co", "1")
        assert revoked.exit_code == 0, revoked.output
        try:
            _authenticate(token)
        except NotAuthenticated:
            pass
        else:
            raise AssertionError("a revoked token still authenticates")

    def test_tokens_for_an_unknown_user_are_refused(self):
        outcome = _invoke("tokens", "create", "--email", "nobody@x.co")
        assert outcome.exit_code == 1
        assert "no user" in outcome.output


def _is_admin(email: str) -> bool:
    async def main():
        engine = create_engine(Settings().database_url_resolved)
        try:
            async with create_sessionmaker(engine)() as session:
                user = await AuthService(session).users.get_by_email(email)
                assert user is not None
                return user.is_admin
        finally:
            await engine.dispose()

    return asyncio.run(main())


class TestUsersAdmin:
    def test_makes_a_user_an_admin_and_revoke_takes_it_back(self):
        assert (
            _invoke("users", "create", "--email", "op@example.com", "--no-password").exit_code == 0
        )
        assert _is_admin("op@example.com") is False

        made = _invoke("users", "admin", "OP@example.com")
        assert made.exit_code == 0, made.output
        assert "op@example.com is an admin" in made.output
        assert _is_admin("op@example.com") is True

        revoked = _invoke("users", "admin", "op@example.com", "--revoke")
        assert revoked.exit_code == 0, revoked.output
        assert "no longer an admin" in revoked.output
        assert _is_admin("op@example.com") is False

    def test_an_unknown_user_is_refused(self):
        outcome = _invoke("users", "admin", "nobody@example.com")
        assert outcome.exit_code == 1
        assert "no user" in outcome.output
