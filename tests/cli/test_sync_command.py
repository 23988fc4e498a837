"""`brokerlink sync` against running sandboxes: links made first, then synced with progress."""

import asyncio

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from brokerlink.cli import app
from brokerlink.cli.demo import link_in_browser
from brokerlink.cli.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CONSUMER_KEY
from brokerlink.cli.sandbox_plaid import PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET
from brokerlink.composition import provider_connectors
from brokerlink.config import Settings, get_settings
from brokerlink.connections import LinkService
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.models import Account, Connection
from brokerlink.repositories import PortfolioRepository, UserRepository
from brokerlink.routing import LinkRouter, load_coverage
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox import snaptrade as snaptrade_sandbox
from brokerlink.secrets import secret_store_from_settings
from tests.fixtures.uvicorn_thread import serve_in_thread


@pytest.fixture
def sandboxes():
    snap = snaptrade_sandbox.create_app(
        client_id=SANDBOX_CLIENT_ID, consumer_key=SANDBOX_CONSUMER_KEY
    )
    plaid = plaid_sandbox.create_app(
        client_id=PLAID_SANDBOX_CLIENT_ID, secret=PLAID_SANDBOX_SECRET, product_ready_delay=0
    )
    with serve_in_thread(snap) as snap_url, serve_in_thread(plaid) as plaid_url:
        yield snap_url, plaid_url


def _sync(*args: str):
    """`brokerlink sync ARGS`, on settings read afresh from the environment, wide output."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["sync", *args], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()


async def _link(settings, snap_url, plaid_url):
    url = settings.database_url_resolved
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate.upgrade_async(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    secrets = secret_store_from_settings(settings)
    async with sessionmaker() as session:
        user = await UserRepository.from_session(session).create(email="sync@example.com")
        await PortfolioRepository.from_session(session).get_or_create_default(user.id)
        await session.commit()
    async with (
        provider_connectors(
            settings,
            secrets,
            sessionmaker=sessionmaker,
            snaptrade_url=snap_url,
            plaid_url=plaid_url,
        ) as c,
        httpx.AsyncClient() as browser,
    ):
        for institution in ("schwab", "chase"):
            async with sessionmaker() as session:
                links = LinkService(
                    session,
                    router=LinkRouter(load_coverage()),
                    snaptrade=c.snaptrade,
                    plaid=c.plaid,
                )
                await link_in_browser(
                    links, browser, user.id, institution, redirect_uri="http://app.test/"
                )
                await session.commit()
    await engine.dispose()
    return user.id


@pytest.mark.asyncio
async def test_sync_command_syncs_every_connection_with_a_summary(sandboxes):
    snap_url, plaid_url = sandboxes
    user = await _link(Settings(), snap_url, plaid_url)
    outcome = await asyncio.to_thread(
        _sync, "--user", str(user), "--snaptrade-url", snap_url, "--plaid-url", plaid_url
    )
    assert outcome.exit_code == 0, outcome.output
    assert "providers: snaptrade, plaid" in outcome.output
    assert "2 ok, 0 failed" in outcome.output
    assert "provider calls" in outcome.output


async def _freshness(settings):
    """Every connection's and account's sync state, as the web app shows it."""
    engine = create_engine(settings.database_url_resolved)
    try:
        async with create_sessionmaker(engine)() as session:
            connections = (await session.scalars(select(Connection).order_by(Connection.id))).all()
            accounts = (await session.scalars(select(Account).order_by(Account.id))).all()
            return [(c.id, c.status, c.status_reason, c.last_synced_at) for c in connections], [
                (a.id, a.sync_status, a.last_synced_at, a.last_error, a.last_error_at)
                for a in accounts
            ]
    finally:
        await engine.dispose()


def test_sync_without_any_provider_is_refused_up_front_and_changes_nothing(sandboxes):
    snap_url, plaid_url = sandboxes
    asyncio.run(_link(Settings(), snap_url, plaid_url))
    before = asyncio.run(_freshness(Settings()))
    assert before[1], "the links made accounts"
    outcome = _sync()
    assert outcome.exit_code == 2, outcome.output
    assert "Nothing was synced" in outcome.output
    assert "1 connection is at snaptrade" in outcome.output
    assert "SNAPTRADE_CLIENT_ID and SNAPTRADE_CONSUMER_KEY" in outcome.output
    assert "--snaptrade-url" in outcome.output
    assert "1 connection is at plaid" in outcome.output
    assert "--plaid-url" in outcome.output
    assert "connector is configured" not in outcome.output
    assert asyncio.run(_freshness(Settings())) == before


def test_one_provider_missing_is_refused_too(sandboxes):
    snap_url, plaid_url = sandboxes
    asyncio.run(_link(Settings(), snap_url, plaid_url))
    before = asyncio.run(_freshness(Settings()))
    outcome = _sync("--snaptrade-url", snap_url)
    assert outcome.exit_code == 2, outcome.output
    assert "at plaid" in outcome.output
    assert "at snaptrade" not in outcome.output
    assert asyncio.run(_freshness(Settings())) == before


def test_rows_name_the_institution(sandboxes):
    snap_url, plaid_url = sandboxes
    asyncio.run(_link(Settings(), snap_url, plaid_url))
    outcome = _sync("--snaptrade-url", snap_url, "--plaid-url", plaid_url)
    assert outcome.exit_code == 0, outcome.output
    assert "Institution" in outcome.output
    assert "Charles Schwab (#" in outcome.output
    assert "Chase (#" in outcome.output


def test_watch_syncs_what_is_due_and_stops_after_the_runs_asked(sandboxes):
    snap_url, plaid_url = sandboxes
    asyncio.run(_link(Settings(), snap_url, plaid_url))
    outcome = _sync("--watch", "--runs", "1", "--snaptrade-url", snap_url, "--plaid-url", plaid_url)
    assert outcome.exit_code == 0, outcome.output
    assert "intervals: snaptrade 1 day" in outcome.output
    assert "2 ok, 0 failed" in outcome.output


def test_sync_on_a_database_behind_head_is_refused_and_migrates_nothing(tmp_path):
    outcome = _sync()
    assert outcome.exit_code == 2, outcome.output
    assert "brokerlink db upgrade" in outcome.output
    settings = Settings()
    assert migrate.current(settings.database_url_resolved) == ()
