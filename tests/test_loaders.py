"""The portfolio app's synchronous SnapTrade entry points, on the embedded sandbox (asked for
with BROKERLINK_SANDBOX=embedded), and without credentials or that switch: a refusal."""

import asyncio
from decimal import Decimal

import httpx
import pandas as pd
import pytest

from brokerlink import loaders
from brokerlink.cli.demo import approve_in_portal
from brokerlink.config import get_settings
from brokerlink.domain import Instrument, InstrumentKind, Position, Provider
from brokerlink.errors import ConfigurationError
from brokerlink.secrets import SecretNotFound


@pytest.fixture(autouse=True)
def _fresh_runtime(monkeypatch):
    monkeypatch.setenv("BROKERLINK_SANDBOX", "embedded")
    get_settings.cache_clear()
    yield
    loaders.shutdown()
    get_settings.cache_clear()


def _approve(url: str) -> str:
    """What the user's browser does in the portal."""

    async def approve() -> str:
        async with httpx.AsyncClient() as browser:
            return await approve_in_portal(browser, url, "SCHWAB")

    return asyncio.run(approve())


def test_connect_and_read_through_the_loaders():
    snaptrade_id = loaders.register_snaptrade_user("42")
    assert loaders.register_snaptrade_user("42") == snaptrade_id  # reused, not re-registered

    url = loaders.create_connection_portal_url("42", "Charles Schwab", "https://app.test/back")
    assert "/portal/connect" in url
    connection_id = _approve(url)

    records = loaders.list_user_snaptrade_connections("42")
    assert [(r.institution, r.user_id) for r in records] == [("schwab", "42")]
    assert loaders.get_snaptrade_user_secret("42", "schwab").snaptrade_user_id == snaptrade_id

    accounts = loaders.get_snaptrade_accounts("42")
    assert {a.connection_id for a in accounts} == {connection_id}
    positions = loaders.get_snaptrade_positions("42")
    assert {p.account_id for p in positions} == {a.account_id for a in accounts}
    assert any(p.instrument.symbol == "CUR:USD" for p in positions)
    balances = loaders.get_snaptrade_balances("42", accounts[0].account_id)
    assert balances
    assert balances[0].currency == "USD"

    frame = loaders.normalize_snaptrade_holdings(positions, accounts)
    assert list(frame.columns) == list(loaders.HOLDINGS_COLUMNS)
    assert len(frame) == len(positions)
    assert set(frame["institution"]) == {accounts[0].institution_name}

    data = loaders.convert_snaptrade_holdings_to_portfolio_data(frame)
    total_cash = sum(p.quantity for p in positions if p.instrument.symbol == "CUR:USD")
    assert data["SGOV"]["shares"] == total_cash
    assert loaders.convert_snaptrade_holdings_to_portfolio_data(positions) == data

    result = loaders.refresh_snaptrade_connection("42", connection_id)
    assert result.accepted


def test_app_credentials_round_trip_and_stay_secret():
    with pytest.raises(SecretNotFound):
        loaders.get_snaptrade_app_credentials()
    loaders.store_snaptrade_app_credentials("CLIENT", "ck-not-a-real-key", environment="sandbox")
    stored = loaders.get_snaptrade_app_credentials()
    assert stored.client_id == "CLIENT"
    assert stored.consumer_key.get_secret_value() == "ck-not-a-real-key"
    assert "ck-not-a-real-key" not in repr(stored)


def test_user_secret_round_trip():
    loaders.store_snaptrade_user_secret("7", "Fidelity", "us-not-a-real-secret", "snap-7")
    record = loaders.get_snaptrade_user_secret("7", "fidelity")
    assert record.user_secret.get_secret_value() == "us-not-a-real-secret"
    assert record.snaptrade_user_id == "snap-7"


def _pos(ticker, qty, account, kind=InstrumentKind.EQUITY):
    return Position(
        provider=Provider.SNAPTRADE,
        account_id=account,
        instrument=Instrument(symbol=ticker, kind=kind),
        quantity=Decimal(qty),
        currency="USD",
    )


def test_convert_sums_a_ticker_across_accounts_never_overwrites():
    data = loaders.convert_snaptrade_holdings_to_portfolio_data(
        [_pos("AAPL", "100", "a"), _pos("AAPL", "50", "b"), _pos("CUR:USD", "10", "a", "cash")]
    )
    assert data["AAPL"] == {
        "shares": Decimal("150"),
        "currency": "USD",
        "type": "equity",
        "account_id": "a",
    }
    assert data["SGOV"]["shares"] == Decimal("10")
    frame = loaders.normalize_snaptrade_holdings([_pos("AAPL", "1", "a")])
    assert isinstance(frame, pd.DataFrame)


def test_calling_from_inside_a_running_loop_works():
    import asyncio

    async def inside():
        return await asyncio.to_thread(loaders.register_snaptrade_user, "9")

    assert asyncio.run(inside())


@pytest.mark.parametrize(
    "call",
    [
        lambda: loaders.register_snaptrade_user("42"),
        lambda: loaders.get_snaptrade_accounts("42"),
        lambda: loaders.create_connection_portal_url("42", "Charles Schwab"),
    ],
)
def test_without_credentials_or_the_switch_the_loaders_refuse(monkeypatch, call):
    monkeypatch.delenv("BROKERLINK_SANDBOX")
    get_settings.cache_clear()
    with pytest.raises(loaders.SnapTradeNotConfigured) as refused:
        call()
    assert isinstance(refused.value, ConfigurationError)
    assert refused.value.code == "snaptrade_not_configured"
    for name in ("SNAPTRADE_CLIENT_ID", "SNAPTRADE_CONSUMER_KEY", "BROKERLINK_SANDBOX=embedded"):
        assert name in refused.value.message


def test_credentials_can_be_stored_without_the_switch(monkeypatch):
    monkeypatch.delenv("BROKERLINK_SANDBOX")
    get_settings.cache_clear()
    with pytest.raises(SecretNotFound):
        loaders.get_snaptrade_app_credentials()
    loaders.store_snaptrade_app_credentials("CLIENT", "ck-not-a-real-key")
    assert loaders.get_snaptrade_app_credentials().client_id == "CLIENT"


def test_stored_credentials_are_used_instead_of_the_sandbox(monkeypatch):
    """Stored credentials select the service they name (here: a closed port, so the call
    fails as a provider error) and never the embedded sandbox, even with the switch."""
    from brokerlink.domain.errors import ProviderError

    monkeypatch.setenv("SNAPTRADE_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SNAPTRADE_MAX_RETRIES", "0")
    get_settings.cache_clear()
    loaders.store_snaptrade_app_credentials("CLIENT", "ck-not-a-real-key")
    with pytest.raises(ProviderError):
        loaders.register_snaptrade_user("42")
