"""The refresh guard across server processes: two `brokerlink serve` processes on one store
(PostgreSQL, and an SQLite file), one Plaid sandbox, twenty refreshes of one connection at once.

Exactly one billed call may reach the sandbox (counted by the sandbox itself), with exactly one
ledger row; the other nineteen are refused with a reason and the next allowed time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.pool import NullPool

from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.models import CostEntry, LedgerStatus, RefreshLog, RefreshStatus
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox_ids import PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET
from tests.fixtures.db import BACKENDS
from tests.fixtures.serve_process import api_token, link_plaid_item, serve_processes
from tests.fixtures.uvicorn_thread import serve_in_thread

pytestmark = pytest.mark.asyncio


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
    token = await api_token(url)
    sandbox_app = plaid_sandbox.create_app(
        client_id=PLAID_SANDBOX_CLIENT_ID, secret=PLAID_SANDBOX_SECRET, product_ready_delay=0
    )
    headers = {"Authorization": f"Bearer {token}"}
    with (
        serve_in_thread(sandbox_app) as plaid_url,
        serve_processes(2, url, tmp_path / "data", plaid_url=plaid_url) as servers,
    ):
        async with httpx.AsyncClient(headers=headers, timeout=60) as http:
            connection_id = await link_plaid_item(http, servers[0], plaid_url)
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
