"""`brokerlink worker` and `brokerlink beat` refuse to start on a store behind head, or without
a queue, saying what to run or set; nothing is consumed or enqueued then."""

import pytest
from typer.testing import CliRunner

from brokerlink.cli import app
from brokerlink.config import get_settings
from brokerlink.db import migrate
from tests.fixtures.db import BACKENDS


@pytest.fixture
def env(monkeypatch, redis_url):
    def apply(url):
        monkeypatch.setenv("BROKERLINK_DATABASE_URL", url)
        monkeypatch.setenv("BROKERLINK_QUEUE_URL", redis_url)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("command", ["worker", "beat"])
def test_a_store_behind_head_is_refused(command, backend, new_database, env):
    url = new_database(backend)
    migrate.upgrade(url, "0012")
    env(url)
    outcome = CliRunner().invoke(app, [command])
    assert outcome.exit_code == 2, outcome.output
    assert "behind this release's head" in outcome.output
    assert "brokerlink db upgrade" in outcome.output
    assert migrate.current(url) == ("0012",)  # nothing was migrated behind the operator's back


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_without_a_queue_nothing_starts(command, new_database, env, monkeypatch):
    url = new_database("sqlite")
    migrate.upgrade(url)
    env(url)
    monkeypatch.delenv("BROKERLINK_QUEUE_URL")
    outcome = CliRunner().invoke(app, [command])
    assert outcome.exit_code == 2, outcome.output
    assert "BROKERLINK_QUEUE_URL is not set" in outcome.output
