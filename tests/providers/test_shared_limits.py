"""Two OS processes, one Redis, one SnapTrade sandbox process: the per-clientId limit holds
across both (no 429 at the sandbox, the limit reached), and one process's 429 holds the other.

The sandbox counts `LIMIT` signed requests per rolling `WINDOW` seconds (scaled down from 250 per
60 s), as the real service counts per clientId.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import httpx
import pytest

from brokerlink.providers.redis_limits import RedisLimits
from tests.fixtures.redis_server import _free_port
from tests.providers.limit_senders import (
    CLIENT_ID,
    CONSUMER_KEY,
    LIMIT,
    WINDOW,
    Target,
    client,
    send_balances,
)

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def sandbox(tmp_path):
    """The SnapTrade sandbox in its own process, as `brokerlink sandbox snaptrade` runs it."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "brokerlink", "sandbox", "snaptrade", "--port", str(port),
        "--client-id", CLIENT_ID, "--consumer-key", CONSUMER_KEY,
        "--rate-limit", str(LIMIT), "--rate-window", str(WINDOW),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "sandbox.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, (tmp_path / "sandbox.log").read_text()
                try:
                    if httpx.get(url + "/", timeout=1).json().get("online"):
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def target(sandbox, redis_url) -> Target:
    async def prepare() -> Target:
        limits = RedisLimits(redis_url)
        partial = Target(sandbox, redis_url, "", "", "")
        try:
            async with client(partial, limits) as snaptrade:
                user_id, secret = await snaptrade.register_user("shared-limits-user")
                await snaptrade.sandbox_create_connection(user_id, secret, "SCHWAB")
                accounts = await snaptrade.list_accounts(user_id, secret)
        finally:
            await limits.aclose()
        return Target(sandbox, redis_url, user_id, secret, accounts[0]["id"])

    found = asyncio.run(prepare())
    httpx.delete(sandbox + "/sandbox/requests").raise_for_status()
    return found


def _arrived(base_url: str) -> int:
    return int(httpx.get(base_url + "/sandbox/requests").json()["total"])


def test_two_processes_share_the_limit_and_reach_it(target):
    per_process = 30
    with SPAWN.Manager() as manager, ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        start = manager.Barrier(2)
        futures = [pool.submit(send_balances, target, per_process, 10, start) for _ in range(2)]
        reports = [f.result(timeout=300) for f in futures]

    # Not one 429 at the sandbox, and every request arrived exactly once.
    assert [r.rate_limited for r in reports] == [0, 0]
    assert [dict(r.statuses) for r in reports] == [{200: per_process}] * 2
    assert _arrived(target.base_url) == 2 * per_process
    # The two processes sent at the same time, not one after the other...
    first, second = (sorted(r.sent) for r in reports)
    assert max(first[0], second[0]) < min(first[-1], second[-1])
    # ...and together they filled the sandbox's window: its own count hit the limit.
    remaining = [n for r in reports for n in r.remaining]
    assert min(remaining) == 0
    assert remaining.count(0) >= 2


def test_a_429_in_one_process_holds_the_other(target):
    httpx.put(
        target.base_url + "/sandbox/faults", json={"fail_next": [429], "retry_after": 2}
    ).raise_for_status()
    with SPAWN.Manager() as manager, ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        start, answered = manager.Barrier(2), manager.Event()
        # Both processes are up before the 429; the second sends the moment the first has it.
        first = pool.submit(send_balances, target, 1, 1, start, None, answered)
        second = pool.submit(send_balances, target, 1, 1, start, answered)
        throttled, held = first.result(timeout=120), second.result(timeout=120)

    assert throttled.rate_limited == 1
    assert dict(throttled.statuses) == {429: 1}
    assert dict(held.statuses) == {200: 1}
    # The hold began when the 429 arrived, after `throttled` started: the other process, released
    # at that moment, sent no earlier than Retry-After seconds after it.
    assert held.sent[0] >= throttled.started + 2.0 - 0.01
    assert _arrived(target.base_url) == 2
