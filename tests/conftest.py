"""Test-wide set-up: a testing environment with no provider credentials from the caller's shell."""

import os

import pytest
import structlog

# Kept: where the store tests find an external PostgreSQL server (tests/fixtures/db.py).
_KEEP = {"BROKERLINK_TEST_DATABASE_URL"}
for _name in list(os.environ):
    if _name in _KEEP:
        continue
    if _name.startswith(("SNAPTRADE_", "PLAID_", "BROKERLINK_")) or _name == "ENABLE_SNAPTRADE":
        del os.environ[_name]
os.environ["BROKERLINK_ENV"] = "testing"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BROKERLINK_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(autouse=True)
def _structlog_defaults():
    # A test that configures logging (the CLI does) must not leak its set-up into the next.
    yield
    structlog.reset_defaults()
