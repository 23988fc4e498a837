"""KMS envelopes: what lands in the database, and what a modified row or key does.

KMS is moto's, over HTTP; the database is the real schema on SQLite and PostgreSQL.
"""

from __future__ import annotations

import socket

import boto3
import pytest
from botocore.config import Config
from sqlalchemy import delete, select

from brokerlink.db.session import transaction
from brokerlink.models import User, UserSecretEnvelope
from brokerlink.repositories.secrets import EnvelopeSecretRepository
from brokerlink.repositories.users import UserRepository
from brokerlink.secrets import (
    KmsEnvelopeStore,
    SecretAccessDenied,
    SecretNotFound,
    SecretStoreUnavailable,
    copy_secrets,
)
from tests.fixtures.moto_server import DUMMY_CREDENTIALS, REGION

USER = "snaptrade/user_secret/u1/alpaca"
OTHER_USER = "snaptrade/user_secret/u2/alpaca"
PLAID = "plaid/access_token/u1/chase"
APP = "snaptrade/app_credentials"
SECRET = "s3cr3t-value-do-not-leak"

pytestmark = pytest.mark.asyncio


@pytest.fixture
def kms_store(sessionmaker, aws_store, moto_server, kms_key_id) -> KmsEnvelopeStore:
    return KmsEnvelopeStore(
        sessionmaker, aws_store, key_id=kms_key_id, client=moto_server.client("kms")
    )


async def rows(sessionmaker) -> list[UserSecretEnvelope]:
    async with transaction(sessionmaker) as session:
        return list(await session.scalars(select(UserSecretEnvelope)))


class TestWhereSecretsGo:
    async def test_per_user_secrets_go_to_the_database(self, kms_store, sessionmaker, aws_store):
        await kms_store.put(USER, {"user_secret": SECRET})
        await kms_store.put(PLAID, {"access_token": SECRET})

        assert sorted(row.name for row in await rows(sessionmaker)) == [PLAID, USER]
        assert await aws_store.list() == []

    async def test_app_credentials_go_to_the_inner_store(self, kms_store, sessionmaker, aws_store):
        await kms_store.put(APP, {"client_id": "c", "consumer_key": SECRET})

        assert await rows(sessionmaker) == []
        assert await aws_store.get(APP) == {"client_id": "c", "consumer_key": SECRET}
        assert await kms_store.get(APP) == {"client_id": "c", "consumer_key": SECRET}

    async def test_per_user_names_left_in_the_inner_store_are_not_listed(
        self, kms_store, aws_store
    ):
        await aws_store.put(OTHER_USER, {"user_secret": "legacy"})
        await kms_store.put(USER, {"user_secret": SECRET})

        assert await kms_store.list() == [USER]
        with pytest.raises(SecretNotFound):
            await kms_store.get(OTHER_USER)


class TestEnvelope:
    async def test_rows_hold_no_plaintext(self, kms_store, sessionmaker, kms_key_id):
        await kms_store.put(USER, {"user_secret": SECRET})

        [row] = await rows(sessionmaker)
        assert SECRET.encode() not in row.ciphertext
        assert SECRET.encode() not in row.wrapped_data_key
        assert b"user_secret" not in row.ciphertext
        assert row.key_id.endswith(kms_key_id)

    async def test_every_put_uses_a_fresh_data_key(self, kms_store, sessionmaker):
        await kms_store.put(USER, {"user_secret": SECRET})
        [first] = await rows(sessionmaker)
        first_key, first_ciphertext = first.wrapped_data_key, first.ciphertext
        await kms_store.put(USER, {"user_secret": SECRET})
        [second] = await rows(sessionmaker)

        assert second.wrapped_data_key != first_key
        assert second.ciphertext != first_ciphertext

    async def test_row_moved_to_another_name_does_not_decrypt(self, kms_store, sessionmaker):
        await kms_store.put(USER, {"user_secret": SECRET})
        async with transaction(sessionmaker) as session:
            repository = EnvelopeSecretRepository.from_session(session)
            row = await repository.get(USER)
            assert row is not None
            await repository.put(
                OTHER_USER,
                ciphertext=row.ciphertext,
                wrapped_data_key=row.wrapped_data_key,
                key_id=row.key_id,
            )

        with pytest.raises(SecretAccessDenied) as caught:
            await kms_store.get(OTHER_USER)
        assert SECRET not in str(caught.value)

    async def test_modified_ciphertext_does_not_decrypt(self, kms_store, sessionmaker):
        await kms_store.put(USER, {"user_secret": SECRET})
        async with transaction(sessionmaker) as session:
            repository = EnvelopeSecretRepository.from_session(session)
            row = await repository.get(USER)
            assert row is not None
            tampered = bytearray(row.ciphertext)
            tampered[-1] ^= 0x01
            await repository.put(
                USER,
                ciphertext=bytes(tampered),
                wrapped_data_key=row.wrapped_data_key,
                key_id=row.key_id,
            )

        with pytest.raises(SecretAccessDenied, match="does not decrypt"):
            await kms_store.get(USER)

    async def test_unknown_key_is_access_denied(self, sessionmaker, aws_store, moto_server):
        store = KmsEnvelopeStore(
            sessionmaker,
            aws_store,
            key_id="alias/does-not-exist",
            client=moto_server.client("kms"),
        )

        with pytest.raises(SecretAccessDenied):
            await store.put(USER, {"user_secret": SECRET})
        assert await rows(sessionmaker) == []

    async def test_unreachable_kms_is_unavailable(self, sessionmaker, aws_store, kms_key_id):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        client = boto3.session.Session().client(
            "kms",
            region_name=REGION,
            endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
            **DUMMY_CREDENTIALS,
        )
        store = KmsEnvelopeStore(sessionmaker, aws_store, key_id=kms_key_id, client=client)

        with pytest.raises(SecretStoreUnavailable):
            await store.put(USER, {"user_secret": SECRET})


class TestOwner:
    async def test_numeric_id_of_an_existing_user_links_the_row(self, kms_store, sessionmaker):
        async with transaction(sessionmaker) as session:
            user = await UserRepository.from_session(session).create(email="a@example.com")
            user_id = user.id
        await kms_store.put(f"snaptrade/user_secret/{user_id}/alpaca", {"user_secret": SECRET})
        await kms_store.put(f"plaid/access_token/{user_id}/chase", {"access_token": SECRET})
        await kms_store.put("plaid/access_token/999999/chase", {"access_token": SECRET})
        await kms_store.put(USER, {"user_secret": SECRET})

        owners = {row.name: row.user_id for row in await rows(sessionmaker)}

        assert owners == {
            f"snaptrade/user_secret/{user_id}/alpaca": user_id,
            f"plaid/access_token/{user_id}/chase": user_id,
            "plaid/access_token/999999/chase": None,
            USER: None,
        }

    async def test_deleting_the_user_deletes_their_envelopes(self, kms_store, sessionmaker):
        async with transaction(sessionmaker) as session:
            user = await UserRepository.from_session(session).create(email="b@example.com")
            user_id = user.id
        await kms_store.put(f"snaptrade/user_secret/{user_id}/alpaca", {"user_secret": SECRET})

        async with transaction(sessionmaker) as session:
            await session.execute(delete(User).where(User.id == user_id))

        assert await kms_store.list() == []


class TestMoveFromSecretsManager:
    async def test_copy_with_delete_moves_per_user_secrets(
        self, kms_store, aws_store, sessionmaker
    ):
        await aws_store.put(USER, {"user_secret": SECRET})
        await aws_store.put(OTHER_USER, {"user_secret": "other"})
        await aws_store.put(APP, {"client_id": "c"})

        moved = await copy_secrets(
            aws_store, kms_store, "snaptrade/user_secret/", delete_source=True
        )

        assert moved == [USER, OTHER_USER]
        assert await aws_store.list() == [APP]
        assert sorted(row.name for row in await rows(sessionmaker)) == [USER, OTHER_USER]
        assert await kms_store.get(OTHER_USER) == {"user_secret": "other"}
        assert await kms_store.list() == [APP, USER, OTHER_USER]
