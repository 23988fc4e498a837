"""Processes for the worker tests: the SnapTrade sandbox, `brokerlink worker` and `beat`, and
SnapTrade users made fast (registered at the sandbox, stored straight into the store).

    sandbox()                              a SnapTrade sandbox process; its base URL
    Stack(url, redis_url, sandbox, data)   the environment every process shares
    stack.worker() / stack.beat()          started processes, killed when the stack closes
    make_users(stack, n, broker)           n users with one connection each
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import select, update
from sqlalchemy.pool import NullPool

from brokerlink.config import Settings
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.domain import Provider
from brokerlink.models import Connection
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnector
from brokerlink.repositories import ConnectionRepository, PortfolioRepository, UserRepository
from brokerlink.secrets import secret_store_from_settings

CLIENT_ID = "BROKERLINK-WORKERS"
CONSUMER_KEY = "workers-sandbox-key-not-a-secret"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sandbox() -> Iterator[str]:
    """A SnapTrade sandbox in its own process (no rate limit: these tests count, not throttle)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "brokerlink", "sandbox", "snaptrade", "--port", str(port)]
    cmd += ["--client-id", CLIENT_ID, "--consumer-key", CONSUMER_KEY, "--rate-limit", "0"]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError("the sandbox did not start: " + log.read().decode())
            try:
                if httpx.get(base + "/", timeout=1).json().get("online"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()


@dataclass
class Stack:
    database_url: str
    queue_url: str
    sandbox_url: str
    data_dir: Path
    procs: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """What every process of the deployment is given (the test process too)."""
        return {
            "BROKERLINK_DATABASE_URL": self.database_url,
            "BROKERLINK_DATA_DIR": str(self.data_dir),
            "BROKERLINK_QUEUE_URL": self.queue_url,
            # The sandbox's own ids, as a deployment's credentials would be set.
            "SNAPTRADE_CLIENT_ID": CLIENT_ID,
            "SNAPTRADE_CONSUMER_KEY": CONSUMER_KEY,
            "SNAPTRADE_BASE_URL": self.sandbox_url,
            "SNAPTRADE_RATE_LIMIT_PER_MINUTE": "100000",
            # Scaled down: a dead worker's job is handed on within seconds, its lease too.
            "BROKERLINK_QUEUE_VISIBILITY_TIMEOUT_SECONDS": "2",
            "BROKERLINK_QUEUE_RESTORE_INTERVAL_SECONDS": "0.5",
            "BROKERLINK_SYNC_LEASE_SECONDS": "3",
            **self.overrides,
        }

    def settings(self) -> Settings:
        return Settings()  # from os.environ, which `activate` set

    def activate(self) -> None:
        os.environ.update(self.env)

    def _start(self, args: list[str]) -> subprocess.Popen[bytes]:
        log = tempfile.NamedTemporaryFile(prefix="worker-test-", suffix=".log")  # noqa: SIM115
        cmd = [sys.executable, "-m", "brokerlink", *args, "--log-level", "WARNING"]
        proc = subprocess.Popen(
            cmd, env={**os.environ, **self.env}, stdout=log, stderr=log, start_new_session=True
        )
        self.procs.append((proc, log))
        return proc

    def worker(self, concurrency: int = 8) -> subprocess.Popen[bytes]:
        return self._start(["worker", "--concurrency", str(concurrency)])

    def beat(self, tick: float = 0.2) -> subprocess.Popen[bytes]:
        return self._start(["beat", "--tick", str(tick)])

    def logs(self) -> str:
        return "\n".join(
            Path(log.name).read_text(errors="replace")[-3000:] for _, log in self.procs
        )

    def close(self) -> None:
        for proc, log in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            log.close()


def set_latency(sandbox_url: str, seconds: float) -> None:
    httpx.put(f"{sandbox_url}/sandbox/faults", json={"latency": seconds}).raise_for_status()


def sandbox_counts(sandbox_url: str) -> dict[str, int]:
    return dict(httpx.get(f"{sandbox_url}/sandbox/requests").json()["counts"])


def reset_counts(sandbox_url: str) -> None:
    httpx.delete(f"{sandbox_url}/sandbox/requests").raise_for_status()


async def make_users(stack: Stack, count: int, broker: str) -> list[tuple[int, int]]:
    """`count` users, each registered at the sandbox with one `broker` connection, stored
    directly (no link flow); not due until the test says (`next_sync_at` far ahead)."""
    engine = create_engine(stack.database_url, poolclass=NullPool)
    sessionmaker = create_sessionmaker(engine)
    settings = stack.settings()
    secrets = secret_store_from_settings(settings, sessionmaker=sessionmaker)
    made: list[tuple[int, int]] = []
    try:
        async with SnapTradeClient(
            CLIENT_ID, CONSUMER_KEY, base_url=stack.sandbox_url, rate_limit_per_minute=100000
        ) as client:
            connector = SnapTradeConnector(client, secrets)
            async with sessionmaker() as session:
                users = UserRepository.from_session(session)
                ids = [
                    (await users.create(email=f"w{n}-{id(made)}@example.com")).id
                    for n in range(count)
                ]
                for uid in ids:
                    await PortfolioRepository.from_session(session).get_or_create_default(uid)
                await session.commit()
            async with sessionmaker() as session:
                repo = ConnectionRepository.from_session(session)
                for uid in ids:
                    await connector.register_user(str(uid))
                    creds = await connector._credentials(str(uid))
                    auth = await client.sandbox_create_connection(
                        creds.snaptrade_user_id, creds.secret, broker, "read"
                    )
                    c = await repo.upsert(
                        user_id=uid,
                        provider=Provider.SNAPTRADE,
                        provider_connection_id=auth["id"],
                        institution_name=broker.title(),
                        institution_slug=broker.lower(),
                    )
                    made.append((uid, c.id))
                await session.execute(update(Connection).values(next_sync_at=_far_future()))
                await session.commit()
    finally:
        await engine.dispose()
    return made


def _far_future() -> datetime:
    return datetime(2100, 1, 1, tzinfo=UTC)


async def connection_rows(database_url: str) -> list[Connection]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(Connection).order_by(Connection.id)))
    finally:
        await engine.dispose()
