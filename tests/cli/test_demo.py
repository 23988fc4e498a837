"""The main job: `brokerlink demo` on the embedded defaults."""

import pytest
from typer.testing import CliRunner

from brokerlink.cli import app
from brokerlink.cli.demo import run_demo
from brokerlink.domain import InstrumentKind, Provider


@pytest.mark.asyncio
async def test_demo_connects_schwab_and_fidelity_through_the_portal():
    result = await run_demo()

    assert set(result.connection_ids) == {"SCHWAB", "FIDELITY"}
    institutions = {a.institution_name for a in result.accounts}
    assert any("Schwab" in name for name in institutions)
    assert any("Fidelity" in name for name in institutions)
    for account in result.accounts:
        assert account.provider is Provider.SNAPTRADE
        positions = result.positions[account.account_id]
        assert positions, f"{account.institution_name} {account.name} has no positions"
        assert all(p.account_id == account.account_id for p in positions)
    # Schwab trades, Fidelity is read-only: the capability follows the brokerage and connection.
    for account in result.accounts:
        assert account.capabilities.trading is ("Schwab" in account.institution_name)
    kinds = {p.instrument.kind for ps in result.positions.values() for p in ps}
    assert InstrumentKind.CASH in kinds
    assert InstrumentKind.EQUITY in kinds


def test_demo_command_prints_accounts_and_positions():
    outcome = CliRunner().invoke(app, ["demo"])

    assert outcome.exit_code == 0, outcome.output
    assert "Accounts connected through SnapTrade" in outcome.output
    assert "Fidelity" in outcome.output
    assert "Schwab" in outcome.output
    assert "CUR:USD" in outcome.output
