"""One contract, every backend: memory, local file, Secrets Manager (moto server over HTTP) and
KMS envelopes in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import pytest_asyncio

from brokerlink.secrets import (
    MAX_SECRET_BYTES,
    InvalidSecret,
    SecretNotFound,
    SecretStore,
)

APP = "snaptrade/app_credentials"
USER_U1_ALPACA = "snaptrade/user_secret/u1/alpaca"
USER_U1_SCHWAB = "snaptrade/user_secret/u1/charles-schwab"
USER_U10 = "snaptrade/user_secret/u10/alpaca"
PLAID_U1 = "plaid/access_token/u1/chase"

pytestmark = pytest.mark.asyncio


class TestPutGet:
    async def test_round_trip(self, store: SecretStore):
        await store.put(USER_U1_ALPACA, {"user_secret": "s1", "n": 3, "nested": {"ok": True}})

        assert await store.get(USER_U1_ALPACA) == {
            "user_secret": "s1",
            "n": 3,
            "nested": {"ok": True},
        }

    async def test_app_credentials_round_trip(self, store: SecretStore):
        await store.put(APP, {"client_id": "c", "consumer_key": "k", "environment": "sandbox"})

        assert (await store.get(APP))["consumer_key"] == "k"

    async def test_update_replaces_the_value(self, store: SecretStore):
        await store.put(PLAID_U1, {"access_token": "old", "item_id": "i"})
        await store.put(PLAID_U1, {"access_token": "new"})

        assert await store.get(PLAID_U1) == {"access_token": "new"}

    async def test_missing_raises_secret_not_found(self, store: SecretStore):
        with pytest.raises(SecretNotFound, match="u404"):
            await store.get("snaptrade/user_secret/u404/alpaca")

    async def test_missing_app_credentials_raise_secret_not_found(self, store: SecretStore):
        with pytest.raises(SecretNotFound):
            await store.get(APP)

    async def test_unicode_value(self, store: SecretStore):
        value = {"user_secret": "clé-秘密-🔑", "institution": "Société Générale"}
        await store.put(USER_U1_ALPACA, value)

        assert await store.get(USER_U1_ALPACA) == value

    async def test_large_value(self, store: SecretStore):
        value = {"blob": "x" * (MAX_SECRET_BYTES - 100)}
        await store.put(PLAID_U1, value)

        assert await store.get(PLAID_U1) == value

    async def test_value_over_the_limit_is_refused(self, store: SecretStore):
        with pytest.raises(InvalidSecret, match="exceeds"):
            await store.put(PLAID_U1, {"blob": "x" * MAX_SECRET_BYTES})

    async def test_value_must_be_a_json_object(self, store: SecretStore):
        with pytest.raises(InvalidSecret):
            await store.put(PLAID_U1, ["not", "an", "object"])  # type: ignore[arg-type]

    @pytest.mark.parametrize("name", ["", "/abs", "a//b", "a/../b", "trailing/", "spa ce"])
    async def test_bad_names_are_refused(self, store: SecretStore, name: str):
        with pytest.raises(InvalidSecret):
            await store.put(name, {"v": 1})


class TestDelete:
    async def test_delete_removes(self, store: SecretStore):
        await store.put(USER_U1_ALPACA, {"user_secret": "s"})
        await store.put(APP, {"client_id": "c"})

        await store.delete(USER_U1_ALPACA)
        await store.delete(APP)

        with pytest.raises(SecretNotFound):
            await store.get(USER_U1_ALPACA)
        with pytest.raises(SecretNotFound):
            await store.get(APP)
        assert await store.list() == []

    async def test_delete_missing_is_not_an_error(self, store: SecretStore):
        await store.delete("snaptrade/user_secret/nobody/alpaca")
        await store.delete("misc/nothing")

    async def test_put_after_delete(self, store: SecretStore):
        await store.put(APP, {"client_id": "1"})
        await store.delete(APP)
        await store.put(APP, {"client_id": "2"})

        assert await store.get(APP) == {"client_id": "2"}


class TestList:
    @pytest_asyncio.fixture
    async def filled(self, store: SecretStore) -> SecretStore:
        for name in (USER_U10, PLAID_U1, USER_U1_SCHWAB, APP, USER_U1_ALPACA):
            await store.put(name, {"v": name})
        return store

    async def test_everything_sorted(self, filled: SecretStore):
        assert await filled.list() == sorted(
            [APP, PLAID_U1, USER_U1_ALPACA, USER_U1_SCHWAB, USER_U10]
        )

    async def test_by_user_prefix(self, filled: SecretStore):
        assert await filled.list("snaptrade/user_secret/u1/") == [USER_U1_ALPACA, USER_U1_SCHWAB]

    async def test_prefix_is_a_plain_prefix(self, filled: SecretStore):
        assert await filled.list("snaptrade/user_secret/u1") == [
            USER_U1_ALPACA,
            USER_U1_SCHWAB,
            USER_U10,
        ]

    async def test_prefix_spanning_both_kinds(self, filled: SecretStore):
        assert await filled.list("snaptrade/") == [
            APP,
            USER_U1_ALPACA,
            USER_U1_SCHWAB,
            USER_U10,
        ]

    async def test_prefix_is_case_sensitive(self, filled: SecretStore):
        assert await filled.list("SnapTrade/") == []

    async def test_no_match(self, filled: SecretStore):
        assert await filled.list("nothing/") == []
