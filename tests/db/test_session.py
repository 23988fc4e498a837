"""Engines and the transaction boundary."""

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from brokerlink.db import create_engine, transaction
from brokerlink.models import User
from brokerlink.repositories import UserRepository


class TestTransaction:
    @pytest.mark.asyncio
    async def test_commits_on_success(self, sessionmaker):
        async with transaction(sessionmaker) as session:
            await UserRepository.from_session(session).create(email="kept@example.com")

        async with sessionmaker() as other:
            assert await UserRepository.from_session(other).get_by_email("kept@example.com")

    @pytest.mark.asyncio
    async def test_rolls_back_on_error(self, sessionmaker):
        async def create_then_fail():
            async with transaction(sessionmaker) as session:
                await UserRepository.from_session(session).create(email="gone@example.com")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await create_then_fail()

        async with sessionmaker() as other:
            assert await UserRepository.from_session(other).get_by_email("gone@example.com") is None


class TestCreateEngine:
    @pytest.mark.asyncio
    async def test_sqlite_has_foreign_keys_and_wal(self, tmp_path):
        engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", poolclass=NullPool)
        try:
            assert engine.url.drivername == "sqlite+aiosqlite"
            async with engine.connect() as connection:
                foreign_keys = await connection.scalar(sa.text("PRAGMA foreign_keys"))
                journal = await connection.scalar(sa.text("PRAGMA journal_mode"))
        finally:
            await engine.dispose()

        assert foreign_keys == 1
        assert journal == "wal"

    @pytest.mark.asyncio
    async def test_savepoints_roll_back(self, engine):
        # pysqlite alone would not roll the SAVEPOINT back (see session._configure_sqlite).
        async with engine.connect() as connection:
            await connection.begin()
            nested = await connection.begin_nested()
            await connection.execute(
                sa.insert(User.__table__).values(
                    email="x@example.com", created_at=sa.func.now(), updated_at=sa.func.now()
                )
            )
            await nested.rollback()
            count = await connection.scalar(sa.select(sa.func.count()).select_from(User.__table__))
            await connection.rollback()

        assert count == 0

    def test_postgres_scheme_uses_psycopg(self):
        engine = create_engine("postgresql://u@127.0.0.1:1/db")

        assert engine.url.drivername == "postgresql+psycopg"
