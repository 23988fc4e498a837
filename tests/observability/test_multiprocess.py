"""Prometheus multiprocess mode: two OS processes, each calling its own SnapTrade sandbox through
the pipeline with `PROMETHEUS_MULTIPROC_DIR` set, are both counted in one scrape of a third."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from brokerlink.observability import MetricsEndpoint

ROOT = Path(__file__).resolve().parents[2]

# One recording process: `calls` status checks through the pipeline, counted by the metrics sink.
SENDER = textwrap.dedent(
    """
    import asyncio, sys

    import httpx

    from brokerlink.observability.metrics import CallMetrics
    from brokerlink.providers.observe import Observer
    from brokerlink.providers.snaptrade import SnapTradeClient
    from brokerlink.sandbox.snaptrade import create_app

    async def main(calls: int) -> None:
        app = create_app(client_id="MP", consumer_key="mp-key-not-a-secret", rate_limit=0)
        async with SnapTradeClient(
            "MP", "mp-key-not-a-secret", base_url="http://sandbox.test",
            transport=httpx.ASGITransport(app=app), observer=Observer(sinks=[CallMetrics()]),
        ) as client:
            for _ in range(calls):
                await client.api_status()

    asyncio.run(main(int(sys.argv[1])))
    """
)


@pytest.mark.asyncio
async def test_two_processes_are_counted_in_one_scrape(tmp_path, monkeypatch, sessionmaker):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    senders = [
        subprocess.Popen(
            [sys.executable, "-c", SENDER, str(calls)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for calls in (3, 5)
    ]
    for sender in senders:
        _, err = sender.communicate(timeout=120)
        assert sender.returncode == 0, err.decode()
    written = {p.name for p in directory.glob("counter_*.db")}
    assert written == {f"counter_{s.pid}.db" for s in senders}

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    text = (await MetricsEndpoint(token=SecretStr("t"), reads=sessionmaker).render()).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = (("operation", "ApiStatus_check"), ("provider", "snaptrade"), ("result", "ok"))
    assert samples[("brokerlink_provider_calls_total", labels)] == 8
    assert samples[("brokerlink_provider_call_seconds_count", labels)] == 8
