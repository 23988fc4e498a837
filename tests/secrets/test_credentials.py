"""Typed records over the store, and app-credential rotation without a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from brokerlink.secrets import (
    AppCredentials,
    AppCredentialsProvider,
    InvalidSecret,
    MemorySecretStore,
    PlaidAccessToken,
    SecretAccessDenied,
    SecretNotFound,
    SecretStoreError,
    SecretStoreUnavailable,
    SnapTradeUserSecret,
    existing_snaptrade_user,
    get_app_credentials,
    get_plaid_access_token,
    get_snaptrade_user_secret,
    institution_slug,
    list_user_snaptrade_connections,
    store_app_credentials,
    store_plaid_access_token,
    store_snaptrade_user_secret,
)

SECRET = "s3cr3t-value-do-not-leak"
CREATED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def user_secret(user_id: str = "u1", institution: str = "Alpaca") -> SnapTradeUserSecret:
    return SnapTradeUserSecret(
        user_secret=SECRET,
        user_id=user_id,
        institution=institution,
        snaptrade_user_id=f"st-{user_id}",
        created_at=CREATED,
    )


class TestRedaction:
    @pytest.mark.parametrize(
        "record",
        [
            AppCredentials(client_id="c", consumer_key=SECRET, environment="sandbox"),
            user_secret(),
            PlaidAccessToken(access_token=SECRET, user_id="u1", institution="chase"),
        ],
        ids=["app", "snaptrade", "plaid"],
    )
    def test_str_and_repr_hide_the_secret(self, record):
        assert SECRET not in str(record)
        assert SECRET not in repr(record)
        assert SECRET not in str(record.model_dump())
        assert SECRET in str(record.to_secret_value())

    def test_store_reprs_hold_no_values(self):
        store = MemorySecretStore({"snaptrade/app_credentials": {"consumer_key": SECRET}})

        assert SECRET not in repr(store)
        assert SECRET not in repr(AppCredentialsProvider(store))

    @pytest.mark.asyncio
    async def test_invalid_stored_record_error_hides_the_value(self):
        store = MemorySecretStore({"snaptrade/app_credentials": {"consumer_key": SECRET}})

        with pytest.raises(SecretStoreError, match="AppCredentials") as caught:
            await get_app_credentials(store)

        assert SECRET not in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__


@pytest.mark.asyncio
class TestAppCredentials:
    async def test_round_trip_under_the_portfolio_name(self):
        store = MemorySecretStore()
        await store_app_credentials(
            store, AppCredentials(client_id="c", consumer_key=SECRET, environment="sandbox")
        )

        assert await store.get("snaptrade/app_credentials") == {
            "client_id": "c",
            "consumer_key": SECRET,
            "environment": "sandbox",
        }
        credentials = await get_app_credentials(store)
        assert credentials.consumer_key.get_secret_value() == SECRET

    async def test_missing(self):
        with pytest.raises(SecretNotFound):
            await get_app_credentials(MemorySecretStore())


@pytest.mark.asyncio
class TestSnapTradeUserSecret:
    async def test_round_trip_under_the_slugged_name(self):
        store = MemorySecretStore()
        await store_snaptrade_user_secret(store, user_secret(institution="Charles Schwab"))

        assert await store.list() == ["snaptrade/user_secret/u1/charles-schwab"]
        record = await get_snaptrade_user_secret(store, "u1", "charles-schwab")
        assert record == user_secret(institution="Charles Schwab")
        assert record.created_at == CREATED

    async def test_list_a_users_connections_only(self):
        store = MemorySecretStore()
        for user_id, institution in [("u1", "alpaca"), ("u1", "schwab"), ("u10", "alpaca")]:
            await store_snaptrade_user_secret(store, user_secret(user_id, institution))
        await store_plaid_access_token(
            store, PlaidAccessToken(access_token="t", user_id="u1", institution="chase")
        )

        connections = await list_user_snaptrade_connections(store, "u1")

        assert [c.institution for c in connections] == ["alpaca", "schwab"]
        assert await list_user_snaptrade_connections(store, "nobody") == []

    async def test_one_snaptrade_user_is_reused(self):
        store = MemorySecretStore()
        assert await existing_snaptrade_user(store, "u1") is None
        await store_snaptrade_user_secret(store, user_secret("u1", "alpaca"))

        existing = await existing_snaptrade_user(store, "u1")

        assert existing is not None
        assert existing.snaptrade_user_id == "st-u1"

    @pytest.mark.parametrize("user_id", ["a/b", "..", "", "u 1"])
    async def test_user_ids_that_would_escape_are_refused(self, user_id):
        with pytest.raises(InvalidSecret):
            await get_snaptrade_user_secret(MemorySecretStore(), user_id, "alpaca")


class TestInstitutionSlug:
    def test_slugs(self):
        assert institution_slug("Charles Schwab & Co.") == "charles-schwab-co"
        assert institution_slug("alpaca") == "alpaca"
        with pytest.raises(InvalidSecret):
            institution_slug("---")


@pytest.mark.asyncio
class TestPlaidAccessToken:
    async def test_round_trip(self):
        store = MemorySecretStore()
        token = PlaidAccessToken(
            access_token=SECRET,
            user_id="u1",
            institution="Chase",
            item_id="item-1",
            institution_id="ins_3",
            created_at=CREATED,
        )
        await store_plaid_access_token(store, token)

        assert await store.list() == ["plaid/access_token/u1/chase"]
        assert await get_plaid_access_token(store, "u1", "chase") == token


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemorySecretStore):
    """A memory store that counts reads and can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.failure: Exception | None = None

    async def get(self, name):
        self.reads += 1
        await asyncio.sleep(0)
        if self.failure is not None:
            raise self.failure
        return await super().get(name)


async def rotate(store, key: str) -> None:
    await store_app_credentials(store, AppCredentials(client_id="c", consumer_key=key))


@pytest.mark.asyncio
class TestAppCredentialsProvider:
    async def test_rotation_takes_effect_after_the_ttl(self):
        store, clock = CountingStore(), Clock()
        await rotate(store, "key-1")
        provider = AppCredentialsProvider(store, ttl_seconds=30, clock=clock)

        assert (await provider.current()).consumer_key.get_secret_value() == "key-1"
        await rotate(store, "key-2")
        clock.now += 29
        assert (await provider.current()).consumer_key.get_secret_value() == "key-1"
        clock.now += 1
        assert (await provider.current()).consumer_key.get_secret_value() == "key-2"
        assert store.reads == 2

    async def test_invalidate_rereads_at_once(self):
        store = CountingStore()
        await rotate(store, "key-1")
        provider = AppCredentialsProvider(store, clock=Clock())
        await provider.current()
        await rotate(store, "key-2")

        provider.invalidate()

        assert (await provider.current()).consumer_key.get_secret_value() == "key-2"

    async def test_concurrent_callers_share_one_read(self):
        store = CountingStore()
        await rotate(store, "key-1")
        provider = AppCredentialsProvider(store, clock=Clock())

        results = await asyncio.gather(*(provider.current() for _ in range(10)))

        assert {r.consumer_key.get_secret_value() for r in results} == {"key-1"}
        assert store.reads == 1

    async def test_transient_failure_keeps_the_last_good_credentials(self):
        store, clock = CountingStore(), Clock()
        await rotate(store, "key-1")
        provider = AppCredentialsProvider(store, ttl_seconds=5, clock=clock)
        await provider.current()
        store.failure = SecretStoreUnavailable("down")
        clock.now += 10

        assert (await provider.current()).consumer_key.get_secret_value() == "key-1"

    async def test_permanent_failure_is_raised(self):
        store, clock = CountingStore(), Clock()
        await rotate(store, "key-1")
        provider = AppCredentialsProvider(store, ttl_seconds=5, clock=clock)
        await provider.current()
        store.failure = SecretAccessDenied("denied")
        clock.now += 10

        with pytest.raises(SecretAccessDenied):
            await provider.current()

    async def test_rotation_through_secrets_manager(self, aws_store):
        await rotate(aws_store, "key-1")
        provider = AppCredentialsProvider(aws_store, ttl_seconds=0)
        assert (await provider.current()).consumer_key.get_secret_value() == "key-1"

        await rotate(aws_store, "key-2")

        assert (await provider.current()).consumer_key.get_secret_value() == "key-2"
