"""Signed requests per second against the SnapTrade sandbox over loopback: ours vs the official SDK.

    make bench        # or: .venv/bin/python -m bench.snaptrade [--requests N] [--concurrency C]

The sandbox runs in its own process (so neither client pays for the server's CPU in its own
process), with its rate limit turned off. Both clients make the same signed, user-scoped requests
(`GET /accounts/{id}/balances` and `GET /accounts/{id}/positions/all`) in the same run, first one
at a time, then with C requests in flight (the SDK is synchronous, so it gets C threads). The SDK
is the baseline: the ratio printed is ours / SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from brokerlink.log import configure_logging
from brokerlink.providers.snaptrade import SnapTradeClient

CLIENT_ID = "BENCH-CLIENT"
CONSUMER_KEY = "bench-consumer-key-not-a-secret"


@dataclass
class Fixture:
    base_url: str
    user_id: str
    user_secret: str
    account_id: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "brokerlink",
        "sandbox",
        "snaptrade",
        "--port",
        str(port),
        "--client-id",
        CLIENT_ID,
        "--consumer-key",
        CONSUMER_KEY,
        "--rate-limit",
        "0",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"sandbox exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            if httpx.get(base_url + "/", timeout=1).json().get("online"):
                return proc, base_url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("sandbox did not start within 20 s")


async def prepare(base_url: str) -> Fixture:
    async with SnapTradeClient(
        client_id=CLIENT_ID, consumer_key=CONSUMER_KEY, base_url=base_url
    ) as client:
        user_id, secret = await client.register_user(f"bench-{os.getpid()}-{time.time_ns()}")
        await client.sandbox_create_connection(
            user_id, secret, broker="SCHWAB", connection_type="read"
        )
        accounts = await client.list_accounts(user_id, secret)
        return Fixture(base_url, user_id, secret, accounts[0]["id"])


def _paths(n: int) -> list[str]:
    return ["balances" if i % 2 == 0 else "positions" for i in range(n)]


async def run_ours(fx: Fixture, n: int, concurrency: int) -> float:
    # The client-side limiter is set far above the load: the sandbox's own limit is off here.
    async with SnapTradeClient(
        client_id=CLIENT_ID,
        consumer_key=CONSUMER_KEY,
        base_url=fx.base_url,
        rate_limit_per_minute=10_000_000,
    ) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(kind: str) -> None:
            async with gate:
                if kind == "balances":
                    await client.get_balances(fx.user_id, fx.user_secret, fx.account_id)
                else:
                    await client.get_positions(fx.user_id, fx.user_secret, fx.account_id)

        await asyncio.gather(*(one(k) for k in _paths(min(n, 20))))  # warm the pool
        start = time.perf_counter()
        await asyncio.gather(*(one(k) for k in _paths(n)))
        return n / (time.perf_counter() - start)


def run_sdk(fx: Fixture, n: int, concurrency: int) -> float:
    import warnings

    from snaptrade_client import SnapTrade, SnapTradeAuth

    warnings.simplefilter("ignore")
    sdk = SnapTrade(
        auth=SnapTradeAuth.commercial_api_key(consumer_key=CONSUMER_KEY, client_id=CLIENT_ID),
        host=fx.base_url,
    )
    secret = fx.user_secret

    def one(kind: str) -> None:
        if kind == "balances":
            sdk.account_information.get_user_account_balance(
                user_id=fx.user_id, user_secret=secret, account_id=fx.account_id
            )
        else:
            sdk.account_information.get_all_account_positions(
                user_id=fx.user_id, user_secret=secret, account_id=fx.account_id
            )

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, _paths(min(n, 20))))
        start = time.perf_counter()
        list(pool.map(one, _paths(n)))
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.snaptrade", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    args = parser.parse_args()
    configure_logging("WARNING")  # per-call events are INFO; printing them is not what we measure

    proc, base_url = start_sandbox()
    try:
        fx = asyncio.run(prepare(base_url))
        print(f"SnapTrade sandbox at {base_url}; {args.requests} signed requests per run")
        print(f"{'mode':<16}{'SDK req/s':>12}{'ours req/s':>12}{'ours/SDK':>10}")
        for label, c in (("sequential", 1), (f"{args.concurrency} in flight", args.concurrency)):
            sdk = run_sdk(fx, args.requests, c)
            ours = asyncio.run(run_ours(fx, args.requests, c))
            print(f"{label:<16}{sdk:>12.0f}{ours:>12.0f}{ours / sdk:>9.1f}x")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
