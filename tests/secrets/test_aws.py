"""Secrets Manager specifics, against the moto server over HTTP.

Error mapping: a `before-send` hook on a real boto3 client answers with the HTTP error the
service would send, so botocore's own parsing builds the ClientError the store maps.
"""

from __future__ import annotations

import json
import socket

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from brokerlink.secrets import (
    AwsSecretsManagerStore,
    SecretAccessDenied,
    SecretNotFound,
    SecretStoreError,
    SecretStoreUnavailable,
    SecretThrottled,
)
from tests.fixtures.moto_server import DUMMY_CREDENTIALS, REGION

NAME = "snaptrade/user_secret/u1/alpaca"
SECRET = "s3cr3t-value-do-not-leak"
NO_RETRIES = Config(retries={"mode": "standard", "max_attempts": 1})


class _Body:
    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_kwargs):
        yield self._content


def answer_with_error(client, code: str, status: int) -> None:
    """Make every call on `client` receive the service's JSON error `code`."""

    def before_send(request, **_kwargs):
        body = json.dumps({"__type": code, "message": "refused by test"}).encode()
        headers = {"x-amzn-RequestId": "req-123", "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, status, headers, _Body(body))

    client.meta.events.register("before-send.secrets-manager", before_send)


@pytest.mark.asyncio
class TestStorage:
    async def test_names_carry_the_prefix(self, aws_store, moto_server, aws_prefix):
        await aws_store.put(NAME, {"user_secret": SECRET})

        raw = moto_server.client("secretsmanager").get_secret_value(SecretId=aws_prefix + NAME)
        assert json.loads(raw["SecretString"]) == {"user_secret": SECRET}

    async def test_update_is_a_new_version_of_the_same_secret(
        self, aws_store, moto_server, aws_prefix
    ):
        await aws_store.put(NAME, {"v": 1})
        await aws_store.put(NAME, {"v": 2})

        client = moto_server.client("secretsmanager")
        versions = client.list_secret_version_ids(SecretId=aws_prefix + NAME)["Versions"]
        assert len(versions) == 2

    async def test_prefixes_isolate_stores(self, moto_server, aws_store, aws_prefix):
        other = AwsSecretsManagerStore(
            moto_server.client("secretsmanager"), prefix=aws_prefix + "other/"
        )
        await other.put(NAME, {"v": "other"})
        await aws_store.put(NAME, {"v": "mine"})

        assert await other.list() == [NAME]
        assert await other.get(NAME) == {"v": "other"}
        assert await aws_store.get(NAME) == {"v": "mine"}

    async def test_list_follows_pagination(self, moto_server, aws_prefix):
        client = moto_server.client("secretsmanager", fresh=True)
        store = AwsSecretsManagerStore(client, prefix=aws_prefix, page_size=2)
        calls = []
        client.meta.events.register(
            "before-send.secrets-manager.ListSecrets", lambda **_: calls.append(1)
        )
        for index in range(7):
            await store.put(f"plaid/access_token/u1/bank{index}", {"i": index})

        names = await store.list("plaid/")

        assert names == [f"plaid/access_token/u1/bank{index}" for index in range(7)]
        assert len(calls) >= 4

    async def test_non_json_value_is_reported_without_its_text(
        self, aws_store, moto_server, aws_prefix
    ):
        moto_server.client("secretsmanager").create_secret(
            Name=aws_prefix + NAME, SecretString=f"not json {SECRET}"
        )

        with pytest.raises(SecretStoreError, match="not JSON") as caught:
            await aws_store.get(NAME)
        assert SECRET not in str(caught.value)
        assert caught.value.__cause__ is None


@pytest.mark.asyncio
class TestErrorMapping:
    @pytest.mark.parametrize(
        ("code", "status", "expected"),
        [
            ("ResourceNotFoundException", 400, SecretNotFound),
            ("AccessDeniedException", 400, SecretAccessDenied),
            ("UnrecognizedClientException", 400, SecretAccessDenied),
            ("ThrottlingException", 400, SecretThrottled),
            ("TooManyRequestsException", 400, SecretThrottled),
            ("InternalServiceError", 500, SecretStoreUnavailable),
            ("InvalidParameterException", 400, SecretStoreError),
        ],
    )
    async def test_get(self, moto_server, code, status, expected):
        client = moto_server.client("secretsmanager", config=NO_RETRIES)
        answer_with_error(client, code, status)

        with pytest.raises(expected) as caught:
            await AwsSecretsManagerStore(client).get(NAME)

        assert type(caught.value) is expected
        assert isinstance(caught.value.__cause__, ClientError)
        assert "req-123" in str(caught.value)

    async def test_access_denied_on_put_never_shows_the_value(self, moto_server):
        client = moto_server.client("secretsmanager", config=NO_RETRIES)
        answer_with_error(client, "AccessDeniedException", 400)

        with pytest.raises(SecretAccessDenied) as caught:
            await AwsSecretsManagerStore(client).put(NAME, {"user_secret": SECRET})

        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value)
        assert caught.value.retryable is False

    async def test_throttled_is_retryable(self, moto_server):
        client = moto_server.client("secretsmanager", config=NO_RETRIES)
        answer_with_error(client, "ThrottlingException", 400)

        with pytest.raises(SecretThrottled) as caught:
            await AwsSecretsManagerStore(client).list()

        assert caught.value.retryable is True

    async def test_delete_of_a_missing_secret_is_quiet(self, moto_server):
        client = moto_server.client("secretsmanager", config=NO_RETRIES)
        answer_with_error(client, "ResourceNotFoundException", 400)

        await AwsSecretsManagerStore(client).delete(NAME)

    async def test_unreachable_endpoint_is_unavailable(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        client = boto3.session.Session().client(
            "secretsmanager",
            region_name=REGION,
            endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
            **DUMMY_CREDENTIALS,
        )

        with pytest.raises(SecretStoreUnavailable) as caught:
            await AwsSecretsManagerStore(client).get(NAME)

        assert isinstance(caught.value.__cause__, EndpointConnectionError)
        assert caught.value.retryable is True
