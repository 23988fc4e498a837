"""The refresh guard across server processes: two `brokerlink serve` processes on one store
(PostgreSQL, and an SQLite file), one Plaid sandbox, twenty refreshes of one connection at once.

Exactly one billed call may reach the sandbox (counted by the sandbox itself), with exactly one
ledger row; the other nineteen are refused with a reason and the next allowed time.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.pool import NullPool

from brokerlink.auth import AuthService
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.models import CostEntry, LedgerStatus, RefreshLog, RefreshStatus
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox_ids import PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET
from tests.fixtures.db import BACKENDS
from tests.fixtures.uvicorn_thread import serve_in_thread

pytestmark = pytest.mark.asyncio


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _servers(count: int, env: dict[str, str], plaid_url: str) -> Iterator[list[str]]:
    """`count` `brokerlink serve` processes on one store, each on its own port."""
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[tempfile._TemporaryFileWrapper[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(count):
            port = _free_port()
            log = tempfile.NamedTemporaryFile(prefix="serve-", suffix=".log")
            cmd = [sys.executable, "-m", "brokerlink", "serve", "--port", str(port)]
            cmd += ["--plaid-url", plaid_url, "--log-level", "WARNING"]
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=log))
            logs.append(log)
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url, log in zip(procs, urls, logs, strict=True):
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(Path(log.name).read_text(errors="replace"))
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start: " + Path(log.name).read_text())
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
        for log in logs:
            log.close()


async def _user_token(url: str) -> str:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with create_sessionmaker(engine)() as session:
            auth = AuthService(session)
            user = await auth.create_user(f"{uuid.uuid4().hex[:10]}@example.com", name="Two")
            issued = await auth.issue(user.id, kind="api", name="tests")
            await session.commit()
            return issued.token
    finally:
        await engine.dispose()


async def _store_rows(url: str, connection_id: int) -> tuple[list[RefreshLog], list[CostEntry]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with create_sessionmaker(engine)() as session:
            log = list(
                await session.scalars(
                    select(RefreshLog).where(RefreshLog.connection_id == connection_id)
                )
            )
            ledger = list(
                await session.scalars(
                    select(CostEntry).where(CostEntry.refresh_id.in_([e.id for e in log]))
                )
            )
            return log, ledger
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_twenty_refreshes_across_two_processes_bill_once(
    backend: str, new_database: Callable[[str], str], tmp_path: Path
) -> None:
    url = new_database(backend)
    await migrate.upgrade_async(url)
    token = await _user_token(url)
    sandbox_app = plaid_sandbox.create_app(
        client_id=PLAID_SANDBOX_CLIENT_ID, secret=PLAID_SANDBOX_SECRET, product_ready_delay=0
    )
    env = {
        **os.environ,
        "BROKERLINK_DATABASE_URL": url,
        "BROKERLINK_DATA_DIR": str(tmp_path / "data"),
        "BROKERLINK_SYNC_IN_APP": "false",
        "BROKERLINK_LINK_STATE_KEY": "two-processes-test-state-key",
    }
    env.pop("PLAID_CLIENT_ID", None)
    env.pop("PLAID_SECRET", None)
    headers = {"Authorization": f"Bearer {token}"}
    with serve_in_thread(sandbox_app) as plaid_url, _servers(2, env, plaid_url) as servers:
        async with httpx.AsyncClient(headers=headers, timeout=60) as http:
            started = await http.post(
                servers[0] + "/api/plaid/create-link-token", json={"institution": "Chase"}
            )
            assert started.status_code == 200, started.text
            made = await http.post(
                plaid_url + "/sandbox/public_token/create",
                json={
                    "client_id": PLAID_SANDBOX_CLIENT_ID,
                    "secret": PLAID_SANDBOX_SECRET,
                    "institution_id": "ins_56",
                    "initial_products": ["investments"],
                },
            )
            exchanged = await http.post(
                servers[0] + "/api/plaid/exchange-public-token",
                json={
                    "public_token": made.json()["public_token"],
                    "state": started.json()["state"],
                },
            )
            assert exchanged.status_code == 200, exchanged.text
            connection_id = exchanged.json()["id"]
            items = sandbox_app.state.sandbox.items.values()
            before = sum(item.refresh_epoch for item in items)

            answers = await asyncio.gather(
                *(
                    http.post(f"{servers[i % 2]}/api/connections/{connection_id}/refresh")
                    for i in range(20)
                )
            )

        at_sandbox = sum(item.refresh_epoch for item in items) - before
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 200:
            continue
        assert answer.status_code in (409, 429), answer.text
        error = answer.json()["error"]
        assert error["code"] in ("refresh_in_flight", "refresh_too_soon"), error
        assert error["reason"], error
        assert error["next_allowed_at"], error
    assert at_sandbox == 1
    log, ledger = await _store_rows(url, connection_id)
    assert sorted(e.status for e in log) == sorted(
        [RefreshStatus.ACCEPTED] + [RefreshStatus.REJECTED] * 19
    )
    assert [(c.status, c.amount) for c in ledger] == [(LedgerStatus.BILLED, Decimal("0.12"))]
