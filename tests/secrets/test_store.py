"""The contract module's helpers, and error text that never carries a secret."""

from __future__ import annotations

import traceback

import pytest

from brokerlink.secrets import (
    InvalidSecret,
    LocalSecretStore,
    SecretAccessDenied,
    SecretNotFound,
    SecretStoreError,
    SecretStoreUnavailable,
    SecretThrottled,
    decode_key,
    generate_key,
)
from brokerlink.secrets.store import check_name, decode_value, encode_value

SECRET = "s3cr3t-value-do-not-leak"


class TestNames:
    @pytest.mark.parametrize(
        "name",
        [
            "snaptrade/app_credentials",
            "snaptrade/user_secret/42/charles-schwab",
            "plaid/access_token/user@example.com/chase",
        ],
    )
    def test_accepted(self, name):
        assert check_name(name) == name

    @pytest.mark.parametrize("name", ["", "a/", "/a", "a//b", "a/./b", "é", "a b", "x" * 513])
    def test_refused(self, name):
        with pytest.raises(InvalidSecret):
            check_name(name)


class TestValues:
    def test_unserialisable_value_error_hides_it(self):
        with pytest.raises(InvalidSecret) as caught:
            encode_value("misc/a", {"key": SECRET, "bad": {1, 2}})

        assert SECRET not in "".join(traceback.format_exception(caught.value))

    def test_nan_is_refused(self):
        with pytest.raises(InvalidSecret):
            encode_value("misc/a", {"x": float("nan")})

    def test_stored_non_json_error_hides_it(self):
        with pytest.raises(SecretStoreError) as caught:
            decode_value("misc/a", f'{{"key": "{SECRET}"')

        assert SECRET not in "".join(traceback.format_exception(caught.value))
        assert caught.value.__context__ is not None
        assert caught.value.__suppress_context__

    def test_stored_non_object_is_an_error(self):
        with pytest.raises(SecretStoreError, match="not a JSON object"):
            decode_value("misc/a", "[1]")


class TestErrors:
    @pytest.mark.parametrize(
        ("error", "status", "retryable"),
        [
            (SecretNotFound, 404, False),
            (SecretAccessDenied, 500, False),
            (SecretThrottled, 503, True),
            (SecretStoreUnavailable, 503, True),
            (InvalidSecret, 422, False),
        ],
    )
    def test_tree(self, error, status, retryable):
        instance = error("secret 'x'")

        assert isinstance(instance, SecretStoreError)
        assert instance.status_code == status
        assert instance.retryable is retryable

    @pytest.mark.asyncio
    async def test_whole_traceback_of_a_wrong_key_hides_the_secret(self, tmp_path):
        path = tmp_path / "secrets.enc"
        await LocalSecretStore(path, key=decode_key(generate_key())).put(
            "misc/a", {"token": SECRET}
        )

        with pytest.raises(SecretAccessDenied) as caught:
            await LocalSecretStore(path, key=decode_key(generate_key())).get("misc/a")

        assert SECRET not in "".join(traceback.format_exception(caught.value))
