"""Secret-store fixtures: the moto server, a KMS key, and one `store` per backend.

`store` is parametrised over every backend, so the contract suite (test_contract.py) runs the
same tests against each. The KMS backend runs on SQLite and on PostgreSQL, each test inside an
outer transaction rolled back at the end (tests/fixtures/db.py's recipe).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from brokerlink.db import migrate
from brokerlink.db.session import create_engine
from brokerlink.secrets import (
    AwsSecretsManagerStore,
    KmsEnvelopeStore,
    LocalSecretStore,
    MemorySecretStore,
    SecretStore,
    generate_key,
)
from brokerlink.secrets.local import decode_key
from tests.fixtures.db import (  # noqa: F401
    db_backend,
    db_connection,
    db_url,
    engine,
    new_database,
    postgres_server,
    session,
    sessionmaker,
)
from tests.fixtures.moto_server import MotoServer, moto_server  # noqa: F401

BACKENDS = ("memory", "local", "aws", "kms-sqlite", "kms-postgresql")


@pytest.fixture(scope="session")
def migrated_database(new_database: Callable[[str], str]) -> Callable[[str], str]:  # noqa: F811
    """`migrated_database(backend)` -> one database per backend, migrated to head once."""
    urls: dict[str, str] = {}

    def get(backend: str) -> str:
        if backend not in urls:
            urls[backend] = new_database(backend)
            migrate.upgrade(urls[backend])
        return urls[backend]

    return get


@pytest.fixture(scope="session")
def kms_key_id(moto_server: MotoServer) -> str:  # noqa: F811
    key = moto_server.client("kms").create_key(Description="brokerlink tests")
    return str(key["KeyMetadata"]["KeyId"])


@pytest.fixture
def aws_prefix() -> str:
    """A fresh name prefix per test: tests share one moto server but never see each other."""
    return f"test-{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def aws_store(moto_server: MotoServer, aws_prefix: str) -> AwsSecretsManagerStore:  # noqa: F811
    return AwsSecretsManagerStore(moto_server.client("secretsmanager"), prefix=aws_prefix)


@pytest.fixture
def local_key() -> bytes:
    return decode_key(generate_key())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_db_url(backend: str, migrated_database: Callable[[str], str]) -> str | None:
    if backend.startswith("kms-"):
        return migrated_database(backend.removeprefix("kms-"))
    return None


@pytest_asyncio.fixture
async def envelope_sessionmaker(
    backend_db_url: str | None,
) -> AsyncIterator[async_sessionmaker[AsyncSession] | None]:
    if backend_db_url is None:
        yield None
        return
    engine = create_engine(backend_db_url, poolclass=NullPool)  # noqa: F811
    async with engine.connect() as connection:
        outer = await connection.begin()
        try:
            yield async_sessionmaker(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
        finally:
            await outer.rollback()
    await engine.dispose()


@pytest.fixture
def store(
    request: pytest.FixtureRequest,
    backend: str,
    envelope_sessionmaker: async_sessionmaker[AsyncSession] | None,
    tmp_path,
    local_key: bytes,
) -> SecretStore:
    if backend == "memory":
        return MemorySecretStore()
    if backend == "local":
        return LocalSecretStore(tmp_path / "secrets.enc", key=local_key)
    server: MotoServer = request.getfixturevalue("moto_server")
    inner = AwsSecretsManagerStore(
        server.client("secretsmanager"), prefix=request.getfixturevalue("aws_prefix")
    )
    if backend == "aws":
        return inner
    assert envelope_sessionmaker is not None
    return KmsEnvelopeStore(
        envelope_sessionmaker,
        inner,
        key_id=request.getfixturevalue("kms_key_id"),
        client=server.client("kms"),
    )
