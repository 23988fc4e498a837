"""`brokerlink serve` as a replica: it never migrates the store and refuses a database behind
head; on the real providers it refuses to start without a shared link-state key; and with the
key shared, a link started on one process completes on another (PostgreSQL, real processes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from brokerlink.cli import app
from brokerlink.cli.demo import log_in_hosted_link
from brokerlink.config import get_settings
from brokerlink.db import migrate
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox_ids import PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET
from tests.fixtures.db import BACKENDS
from tests.fixtures.serve_process import api_token, serve_processes
from tests.fixtures.uvicorn_thread import serve_in_thread

# The revision before head: a database one release behind.
BEHIND = "0009"


def _serve(env: dict[str, str]) -> tuple[int, str]:
    get_settings.cache_clear()
    try:
        outcome = CliRunner().invoke(app, ["serve", "--port", "0"], env=env)
    finally:
        get_settings.cache_clear()
    return outcome.exit_code, outcome.output


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_refuses_an_empty_database_and_leaves_it_empty(
    backend: str, new_database: Callable[[str], str]
) -> None:
    url = new_database(backend)
    code, output = _serve({"BROKERLINK_DATABASE_URL": url})
    assert code == 2, output
    assert "no schema yet" in output
    assert "brokerlink db upgrade" in output
    assert migrate.current(url) == ()


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_refuses_a_database_behind_head_and_does_not_migrate_it(
    backend: str, new_database: Callable[[str], str]
) -> None:
    url = new_database(backend)
    migrate.upgrade(url, BEHIND)
    code, output = _serve({"BROKERLINK_DATABASE_URL": url})
    assert code == 2, output
    assert f"is at {BEHIND}, behind this release's head {migrate.heads()[0]}" in output
    assert "brokerlink db upgrade" in output
    assert migrate.current(url) == (BEHIND,)


def test_serve_on_the_real_providers_refuses_to_start_without_a_link_state_key() -> None:
    code, output = _serve(
        {"SNAPTRADE_CLIENT_ID": "live-client", "SNAPTRADE_CONSUMER_KEY": "ck-not-a-real-key"}
    )
    assert code == 2, output
    assert "BROKERLINK_LINK_STATE_KEY is not set" in output
    assert "real SnapTrade" in output
    assert "any replica" in output
    assert "ck-not-a-real-key" not in output


async def _link_across(url: str, data_dir: Path, state_key: str | None) -> httpx.Response:
    """Start a Chase link on one serve process, log in at Plaid's Hosted Link, complete it on
    the other process; the completion's answer."""
    token = await api_token(url)
    sandbox = plaid_sandbox.create_app(
        client_id=PLAID_SANDBOX_CLIENT_ID, secret=PLAID_SANDBOX_SECRET, product_ready_delay=0
    )
    headers = {"Authorization": f"Bearer {token}"}
    with (
        serve_in_thread(sandbox) as plaid_url,
        serve_processes(2, url, data_dir, plaid_url=plaid_url, state_key=state_key) as servers,
    ):
        async with (
            httpx.AsyncClient(headers=headers, timeout=60) as http,
            httpx.AsyncClient(timeout=60) as browser,
        ):
            started = await http.post(
                servers[0] + "/api/connections", json={"institution": "Chase"}
            )
            assert started.status_code == 201, started.text
            start = started.json()
            assert start["provider"] == "plaid"
            await log_in_hosted_link(browser, start["url"])
            done = await http.post(
                servers[1] + "/api/connections/complete", json={"state": start["state"]}
            )
            if done.status_code == 200:
                listed = await http.get(servers[0] + "/api/connections")
                assert [c["id"] for c in listed.json()] == [done.json()["id"]]
            return done


@pytest.mark.asyncio
async def test_a_link_started_on_one_process_completes_on_another(
    new_database: Callable[[str], str], tmp_path: Path
) -> None:
    url = new_database("postgresql")
    await migrate.upgrade_async(url)
    done = await _link_across(url, tmp_path / "data", "replicas-share-this-link-state-key")
    assert done.status_code == 200, done.text
    assert done.json()["institution"] == "Chase"
    assert done.json()["provider"] == "plaid"


@pytest.mark.asyncio
async def test_without_a_shared_key_the_other_process_refuses_the_state(
    new_database: Callable[[str], str], tmp_path: Path
) -> None:
    """Why the key is required: each process's random key refuses the other's state."""
    url = new_database("postgresql")
    await migrate.upgrade_async(url)
    done = await _link_across(url, tmp_path / "data", None)
    assert 400 <= done.status_code < 500, done.text
