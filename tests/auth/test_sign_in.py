"""Signing in over the API (SQLite and PostgreSQL): hash upgrades, no account enumeration, and
throttling per email and per client address, concurrent attempts included."""

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import httpx
import pytest
from argon2 import extract_parameters
from sqlalchemy import select, update

from brokerlink.auth import passwords
from brokerlink.models import User
from tests.auth.test_passwords import PASSWORD, scrypt_hash, weak_argon2_hash
from tests.fixtures.api import BASE, assert_error

pytestmark = pytest.mark.asyncio

WRONG = "wrong horse battery"


def _address() -> str:
    """A client address of the test's own: the store is shared by the tests of a run."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


def _client(api, address: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app, client=(address, 50123)),
        base_url=BASE,
        headers=headers or {},
    )
    api._clients.append(client)
    return client


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def _stored_hash(api, user_id: int) -> str:
    async with api.state.sessionmaker() as session:
        return str(await session.scalar(select(User.password_hash).where(User.id == user_id)))


async def _set_hash(api, user_id: int, stored: str) -> None:
    async with api.state.sessionmaker() as session:
        await session.execute(update(User).where(User.id == user_id).values(password_hash=stored))
        await session.commit()


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """Every hash a password was checked against, in order (the real check still runs)."""
    seen: list[str] = []
    real = passwords._verify

    def counting(password: str, stored: str) -> bool:
        seen.append(stored)
        return real(password, stored)

    monkeypatch.setattr(passwords, "_verify", counting)
    return seen


class TestHashUpgrade:
    async def test_a_scrypt_hash_is_replaced_by_argon2id_on_sign_in(self, api):
        user = await api.user()
        legacy = scrypt_hash(PASSWORD)
        await _set_hash(api, user.id, legacy)
        client = _client(api, _address())

        assert (await _sign_in(client, user.email, PASSWORD)).status_code == 200
        upgraded = await _stored_hash(api, user.id)
        assert upgraded != legacy
        assert upgraded.startswith("$argon2id$")
        assert not passwords.needs_rehash(upgraded)
        # The new hash signs in, and stays: nothing left to upgrade.
        assert (await _sign_in(client, user.email, PASSWORD)).status_code == 200
        assert await _stored_hash(api, user.id) == upgraded
        assert_error(await _sign_in(client, user.email, WRONG), 401, "invalid_credentials")

    async def test_a_weaker_argon2_hash_is_rehashed_at_the_current_parameters(self, api):
        user = await api.user()
        await _set_hash(api, user.id, weak_argon2_hash(PASSWORD))
        client = _client(api, _address())
        assert (await _sign_in(client, user.email, PASSWORD)).status_code == 200
        stored = await _stored_hash(api, user.id)
        assert extract_parameters(stored) == extract_parameters(passwords.dummy_hash())

    async def test_a_wrong_password_leaves_the_old_hash(self, api):
        user = await api.user()
        legacy = scrypt_hash(PASSWORD)
        await _set_hash(api, user.id, legacy)
        assert_error(await _sign_in(_client(api, _address()), user.email, WRONG), 401)
        assert await _stored_hash(api, user.id) == legacy


class TestNoEnumeration:
    async def test_an_unknown_email_gets_the_wrong_password_answer_after_a_real_check(
        self, api, checks
    ):
        user = await api.user()
        client = _client(api, _address())
        wrong = assert_error(await _sign_in(client, user.email, WRONG), 401, "invalid_credentials")
        assert checks == [await _stored_hash(api, user.id)]
        unknown_email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
        unknown = assert_error(await _sign_in(client, unknown_email, WRONG), 401)
        assert unknown == wrong
        # The unknown email's password was checked too, against the dummy (same parameters).
        assert checks[1:] == [passwords.dummy_hash()]

    async def test_an_account_without_a_password_gets_the_same_answer_and_check(self, api, checks):
        user = await api.user(password=None)
        response = await _sign_in(_client(api, _address()), user.email, PASSWORD)
        assert assert_error(response, 401, "invalid_credentials")["message"] == (
            "wrong email or password"
        )
        assert checks == [passwords.dummy_hash()]

    async def test_unknown_emails_are_throttled_like_known_ones(self, api):
        email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
        client = _client(api, _address())
        for _ in range(api.state.sign_in.max_failures):
            assert_error(await _sign_in(client, email, WRONG), 401)
        assert_error(await _sign_in(client, email, WRONG), 429, "sign_in_throttled")


class TestThrottlePerEmail:
    async def test_the_limit_answers_429_with_retry_after_and_checks_no_password(self, api, checks):
        user = await api.user()
        client = _client(api, _address())
        limit = api.state.sign_in.max_failures
        assert limit == 5  # the default: 5 failures in 15 minutes
        for _ in range(limit):
            assert_error(await _sign_in(client, user.email, WRONG), 401, "invalid_credentials")
        assert len(checks) == limit

        refused = await _sign_in(client, user.email, PASSWORD)  # even the right password
        error = assert_error(refused, 429, "sign_in_throttled")
        assert refused.headers["retry-after"] == str(15 * 60)  # the clock has not moved
        assert error["message"] == "Too many failed sign-ins. Try again in 15 minutes."
        assert error["reason"] == "too many failed sign-ins for this email"
        assert len(checks) == limit  # refused before any password work
        assert "set-cookie" not in refused.headers

        api.clock.advance(timedelta(minutes=15))
        assert (await _sign_in(client, user.email, PASSWORD)).status_code == 200

    async def test_the_email_is_throttled_from_every_address(self, api):
        user = await api.user()
        for _ in range(api.state.sign_in.max_failures):
            assert_error(await _sign_in(_client(api, _address()), user.email, WRONG), 401)
        other = _client(api, _address())
        assert_error(await _sign_in(other, user.email.upper(), PASSWORD), 429, "sign_in_throttled")

    async def test_retry_after_counts_from_the_oldest_failure_in_the_window(self, api):
        user = await api.user()
        client = _client(api, _address())
        assert_error(await _sign_in(client, user.email, WRONG), 401)
        api.clock.advance(timedelta(minutes=5))
        for _ in range(api.state.sign_in.max_failures - 1):
            assert_error(await _sign_in(client, user.email, WRONG), 401)
        refused = await _sign_in(client, user.email, WRONG)
        assert_error(refused, 429, "sign_in_throttled")
        assert refused.headers["retry-after"] == str(10 * 60)
        assert "Try again in 10 minutes." in refused.json()["error"]["message"]
        # When the first failure leaves the window, one more try is allowed, and only one.
        api.clock.advance(timedelta(minutes=10))
        assert_error(await _sign_in(client, user.email, WRONG), 401)
        again = await _sign_in(client, user.email, WRONG)
        assert_error(again, 429, "sign_in_throttled")
        assert again.headers["retry-after"] == str(5 * 60)

    async def test_a_success_clears_the_accounts_failures(self, api):
        user = await api.user()
        client = _client(api, _address())
        limit = api.state.sign_in.max_failures
        for _ in range(limit - 1):
            assert_error(await _sign_in(client, user.email, WRONG), 401)
        assert (await _sign_in(client, user.email, PASSWORD)).status_code == 200
        for _ in range(limit):
            assert_error(await _sign_in(client, user.email, WRONG), 401, "invalid_credentials")
        assert_error(await _sign_in(client, user.email, WRONG), 429, "sign_in_throttled")

    async def test_the_setting_changes_the_limit(self, api):
        api.state.sign_in = dataclasses.replace(api.state.sign_in, max_failures=2)
        user = await api.user()
        client = _client(api, _address())
        for _ in range(2):
            assert_error(await _sign_in(client, user.email, WRONG), 401)
        assert_error(await _sign_in(client, user.email, PASSWORD), 429, "sign_in_throttled")


class TestThrottlePerAddress:
    async def test_many_emails_from_one_address_are_throttled_there_only(self, api, checks):
        api.state.sign_in = dataclasses.replace(api.state.sign_in, max_failures_per_address=3)
        victim = await api.user()
        address = _address()
        attacker = _client(api, address)
        for _ in range(3):
            email = f"guess-{uuid.uuid4().hex[:8]}@example.com"
            assert_error(await _sign_in(attacker, email, WRONG), 401)
        refused = await _sign_in(attacker, victim.email, PASSWORD)
        error = assert_error(refused, 429, "sign_in_throttled")
        assert error["reason"] == "too many failed sign-ins from this network address"
        assert refused.headers["retry-after"] == str(15 * 60)
        assert len(checks) == 3
        # The account itself is not locked: from another address it signs in.
        assert (await _sign_in(_client(api, _address()), victim.email, PASSWORD)).status_code == 200
        # Signing in to one's own account does not reset the address's count.
        assert_error(await _sign_in(attacker, victim.email, PASSWORD), 429, "sign_in_throttled")

    async def test_x_forwarded_for_is_ignored_unless_a_proxy_is_trusted(self, api):
        api.state.sign_in = dataclasses.replace(api.state.sign_in, max_failures_per_address=2)
        address = _address()
        for forged in ("203.0.113.1", "203.0.113.2"):
            client = _client(api, address, {"X-Forwarded-For": forged})
            email = f"guess-{uuid.uuid4().hex[:8]}@example.com"
            assert_error(await _sign_in(client, email, WRONG), 401)
        forged = _client(api, address, {"X-Forwarded-For": "203.0.113.3"})
        assert_error(await _sign_in(forged, "any@example.com", WRONG), 429, "sign_in_throttled")

    async def test_behind_a_trusted_proxy_the_address_is_the_one_it_appended(self, api):
        api.state.sign_in = dataclasses.replace(
            api.state.sign_in, max_failures_per_address=2, trusted_proxy_hops=1
        )
        proxy, client_ip = _address(), _address()
        for spoofed in ("198.51.100.1", "198.51.100.2"):
            # The client sent the left entry; the proxy appended the right one.
            headers = {"X-Forwarded-For": f"{spoofed}, {client_ip}"}
            email = f"guess-{uuid.uuid4().hex[:8]}@example.com"
            assert_error(await _sign_in(_client(api, proxy, headers), email, WRONG), 401)
        same = _client(api, proxy, {"X-Forwarded-For": client_ip})
        assert_error(await _sign_in(same, "any@example.com", WRONG), 429, "sign_in_throttled")
        # Another client behind the same proxy is not throttled.
        other = _client(api, proxy, {"X-Forwarded-For": _address()})
        assert_error(await _sign_in(other, "any@example.com", WRONG), 401, "invalid_credentials")


class TestConcurrentAttempts:
    async def test_concurrent_wrong_attempts_check_no_more_passwords_than_the_limit(
        self, api, checks
    ):
        user = await api.user()
        limit = api.state.sign_in.max_failures
        clients = [_client(api, _address()) for _ in range(4 * limit)]
        answers = await asyncio.gather(*(_sign_in(c, user.email, WRONG) for c in clients))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [401] * limit + [429] * (3 * limit)
        assert len(checks) == limit  # the design's slip: none
        for answer in answers:
            assert_error(answer, answer.status_code)

    async def test_concurrent_attempts_from_one_address_on_many_emails(self, api, checks):
        api.state.sign_in = dataclasses.replace(api.state.sign_in, max_failures_per_address=4)
        address = _address()
        emails = [f"guess-{uuid.uuid4().hex[:8]}@example.com" for _ in range(12)]
        answers = await asyncio.gather(
            *(_sign_in(_client(api, address), email, WRONG) for email in emails)
        )
        assert sorted(a.status_code for a in answers) == [401] * 4 + [429] * 8
        assert len(checks) == 4
