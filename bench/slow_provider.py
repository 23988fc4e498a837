"""Reads and writes while a billed refresh hangs at the provider, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.slow_provider [--hang 30] [--rounds 20]

A `brokerlink serve` process (the real app under uvicorn, its own process) on a throwaway store,
a Plaid sandbox in this process with one linked Chase item. Baseline: the latency of a read
(`GET /api/accounts`, `GET /api/portfolio`) and a write (`POST /api/manual-positions`) with
nothing in flight. Then `/investments/refresh` is made to hang `--hang` seconds at the sandbox,
one refresh is sent, and the same requests are timed while it hangs; so is a second refresh of
the same connection, which must be refused at once (`refresh_in_flight`) without reaching the
provider. Before the intent/call/settle change the read waited ~29 s of a 30 s hang on SQLite.

A one-off measurement, not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from tests.fixtures.postgres_server import start_postgres
from tests.fixtures.serve_process import api_token, link_plaid_item, serve_processes

from brokerlink.cli._serve import serve_in_background
from brokerlink.db import migrate
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox._faults import FaultConfig
from brokerlink.sandbox_ids import PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET


async def _timed(http: httpx.AsyncClient, method: str, url: str, **kw: object) -> float:
    started = time.perf_counter()
    answer = await http.request(method, url, **kw)  # type: ignore[arg-type]
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code >= 400:
        raise SystemExit(f"{method} {url}: {answer.status_code} {answer.text[:200]}")
    return elapsed


async def _round(http: httpx.AsyncClient, base: str, rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"GET /api/accounts": [], "GET /api/portfolio": []}
    out["POST /api/manual-positions"] = []
    for i in range(rounds):
        out["GET /api/accounts"].append(await _timed(http, "GET", base + "/api/accounts"))
        out["GET /api/portfolio"].append(await _timed(http, "GET", base + "/api/portfolio"))
        body = {"ticker": f"T{i % 5}", "quantity": "1", "currency": "USD", "on_existing": "add"}
        out["POST /api/manual-positions"].append(
            await _timed(http, "POST", base + "/api/manual-positions", json=body)
        )
    return out


async def _case(name: str, url: str, hang: float, rounds: int) -> None:
    await migrate.upgrade_async(url)
    token = await api_token(url)
    sandbox = plaid_sandbox.create_app(
        client_id=PLAID_SANDBOX_CLIENT_ID, secret=PLAID_SANDBOX_SECRET
    )
    with tempfile.TemporaryDirectory() as data:
        async with serve_in_background(sandbox) as plaid_url:
            with serve_processes(1, url, Path(data), plaid_url=plaid_url) as (base,):
                headers = {"Authorization": f"Bearer {token}"}
                async with httpx.AsyncClient(headers=headers, timeout=hang * 3) as http:
                    connection = await link_plaid_item(http, base, plaid_url)
                    await asyncio.sleep(1.0)  # the first sync, in the background
                    baseline = await _round(http, base, rounds)

                    sandbox.state.sandbox.faults.configure(
                        FaultConfig(latency=hang, path_pattern="/investments/refresh")
                    )
                    started = time.perf_counter()
                    hanging = asyncio.create_task(
                        http.post(f"{base}/api/connections/{connection}/refresh")
                    )
                    await asyncio.sleep(0.5)  # the intent is committed; the call is at Plaid
                    during = await _round(http, base, rounds)
                    second_started = time.perf_counter()
                    second = await http.post(f"{base}/api/connections/{connection}/refresh")
                    second_ms = (time.perf_counter() - second_started) * 1000
                    still_hanging = not hanging.done()
                    first = await hanging
                    total = time.perf_counter() - started
    print(
        f"\n{name}: refresh hung {hang:g} s at the provider (answered {first.status_code} "
        f"after {total:.1f} s; still hanging after the timed requests: {still_hanging})"
    )
    print(f"  {'request':<28} {'idle p50':>9} {'idle max':>9} {'hang p50':>9} {'hang max':>9}")
    for key, idle in baseline.items():
        busy = during[key]
        print(
            f"  {key:<28} {statistics.median(idle):8.1f}ms {max(idle):8.1f}ms "
            f"{statistics.median(busy):8.1f}ms {max(busy):8.1f}ms"
        )
    code = second.json().get("error", {}).get("code") if second.status_code >= 400 else "-"
    print(f"  second refresh meanwhile: {second.status_code} {code} in {second_ms:.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hang", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await _case("SQLite", f"sqlite:///{tmp}/bench.db", args.hang, args.rounds)
    server = start_postgres(os.environ.get("BROKERLINK_TEST_DATABASE_URL"))
    try:
        await _case("PostgreSQL", server.create_database(), args.hang, args.rounds)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
