"""Holdings reads per second against the Plaid sandbox over loopback: ours vs the official SDK.

    make bench      # or: .venv/bin/python -m bench.plaid_holdings [--requests N] [-c N]

The sandbox runs in its own process (`brokerlink sandbox plaid --no-rate-limits`), so neither
client pays for the server's CPU in its own process. One Item is created through
`/sandbox/public_token/create` and `/item/public_token/exchange`; both clients then make the same
`/investments/holdings/get` request for it in the same run, first one at a time, then with C in
flight (the SDK is synchronous, so it gets C threads). The SDK is the baseline: the ratio printed
is ours / SDK. CPU per request is `time.process_time()` of this (client) process, all threads,
divided by the requests.

Last, the cost of our normaliser (`normalize.from_plaid_holdings`) on the sandbox's own holdings
response scaled up to 1,000 holdings, in microseconds per 1,000 holdings.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench._sandbox import start_sandbox
from brokerlink.log import configure_logging
from brokerlink.providers.plaid import PlaidClient, normalize

CLIENT_ID = "bench-plaid-client"
SECRET = "bench-plaid-secret-not-a-secret"
INSTITUTION = "ins_109508"  # First Platypus Bank: an IRA and a 401(k) with realistic holdings
HOLDINGS_PER_RUN = 1_000


@dataclass(frozen=True)
class Run:
    """One measurement: requests per second and client CPU seconds per request."""

    rps: float
    cpu_per_request: float


def _start() -> tuple[subprocess.Popen[bytes], str]:
    options = ["--client-id", CLIENT_ID, "--secret", SECRET, "--product-ready-delay", "0"]
    return start_sandbox("plaid", [*options, "--no-rate-limits"], "/sandbox-admin/status")


def _client(base_url: str) -> PlaidClient:
    # The client-side limiter stays in the path but far above the load (the sandbox's is off).
    return PlaidClient(CLIENT_ID, SECRET, base_url=base_url, rate_limit_per_minute=10_000_000)


async def prepare(base_url: str) -> tuple[str, dict[str, Any]]:
    """A fresh Item's access token, and one holdings response for the normaliser."""
    async with _client(base_url) as client:
        created = await client.sandbox_public_token_create(INSTITUTION, ["investments"])
        exchanged = await client.item_public_token_exchange(created["public_token"])
        token = exchanged["access_token"]
        holdings = dict(await client.investments_holdings_get(token))
    return token, holdings


async def run_ours(base_url: str, token: str, n: int, concurrency: int) -> Run:
    async with _client(base_url) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                await client.investments_holdings_get(token)

        await asyncio.gather(*(one() for _ in range(min(n, 20))))  # warm the pool
        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Run(n / wall, cpu / n)


def run_sdk(base_url: str, token: str, n: int, concurrency: int) -> Run:
    # Imported here, as the SDK is a dev-only dependency (host set as in INFRA.md 6.2).
    from plaid.api import plaid_api
    from plaid.api_client import ApiClient
    from plaid.configuration import Configuration
    from plaid.model.investments_holdings_get_request import InvestmentsHoldingsGetRequest

    cfg = Configuration(host=base_url, api_key={"clientId": CLIENT_ID, "secret": SECRET})
    cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize, concurrency)
    sdk = plaid_api.PlaidApi(ApiClient(cfg))

    def one(_: int) -> None:
        sdk.investments_holdings_get(InvestmentsHoldingsGetRequest(access_token=token))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(min(n, 20))))
        cpu, start = time.process_time(), time.perf_counter()
        list(pool.map(one, range(n)))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Run(n / wall, cpu / n)


def scale_holdings(payload: dict[str, Any], total: int) -> dict[str, Any]:
    """The response with its non-cash holdings repeated (each copy its own security) up to
    `total` holdings, so the join, the fallbacks and the types all stay as the sandbox has them."""
    securities = {s["security_id"]: s for s in payload["securities"]}

    def is_cash(holding: dict[str, Any]) -> bool:
        security = securities[holding["security_id"]]
        return security.get("type") == "cash" or security.get("ticker_symbol") == "CUR:USD"

    cash = [h for h in payload["holdings"] if is_cash(h)]
    others = [h for h in payload["holdings"] if not is_cash(h)]
    holdings, extra_securities = list(cash), []
    copy_no = 0
    while len(holdings) < total:
        copy_no += 1
        for holding in others:
            if len(holdings) >= total:
                break
            security = copy.deepcopy(securities[holding["security_id"]])
            security["security_id"] = f"{security['security_id']}-{copy_no}"
            extra_securities.append(security)
            holdings.append({**holding, "security_id": security["security_id"]})
    return {
        **payload,
        "holdings": holdings,
        "securities": [*payload["securities"], *extra_securities],
    }


def time_normalise(payload: dict[str, Any], repeats: int = 30) -> tuple[float, int]:
    """Median microseconds per 1,000 holdings for `from_plaid_holdings`, and positions made."""
    holdings = len(payload["holdings"])
    positions = len(normalize.from_plaid_holdings(payload))  # warm up, and check it runs
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        normalize.from_plaid_holdings(payload)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6 * 1_000 / holdings, positions


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.plaid_holdings", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=500, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    args = parser.parse_args()
    configure_logging("WARNING")  # per-call events are INFO; printing them is not what we measure

    proc, base_url = _start()
    try:
        token, holdings = asyncio.run(prepare(base_url))
        print(
            f"Plaid sandbox at {base_url}; {args.requests} /investments/holdings/get per run "
            f"({len(holdings['holdings'])} holdings, {len(holdings['securities'])} securities each)"
        )
        header = (
            f"{'mode':<14}{'SDK req/s':>11}{'ours req/s':>12}{'ours/SDK':>10}"
            f"{'SDK CPU µs/req':>16}{'ours CPU µs/req':>17}{'CPU SDK/ours':>14}"
        )
        print(header)
        for label, c in (("sequential", 1), (f"{args.concurrency} in flight", args.concurrency)):
            sdk = run_sdk(base_url, token, args.requests, c)
            ours = asyncio.run(run_ours(base_url, token, args.requests, c))
            print(
                f"{label:<14}{sdk.rps:>11.0f}{ours.rps:>12.0f}{ours.rps / sdk.rps:>9.1f}x"
                f"{_us(sdk.cpu_per_request):>16}{_us(ours.cpu_per_request):>17}"
                f"{sdk.cpu_per_request / ours.cpu_per_request:>13.1f}x"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    scaled = scale_holdings(holdings, HOLDINGS_PER_RUN)
    per_1000, positions = time_normalise(scaled)
    print(
        f"normalise: {per_1000:,.0f} µs per 1,000 holdings "
        f"(from_plaid_holdings, {len(scaled['holdings'])} holdings -> {positions} positions)"
    )


if __name__ == "__main__":
    main()
