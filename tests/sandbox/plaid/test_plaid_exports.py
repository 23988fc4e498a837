"""Public surface of brokerlink.sandbox.plaid and the seed's invariants."""

from __future__ import annotations

import brokerlink.sandbox.plaid as sandbox
from brokerlink.sandbox.plaid.seed import SECURITIES, isin_from_cusip
from brokerlink.sandbox.plaid.seed_brokerages import SEEDED_INSTITUTIONS


def test_exported_names():
    assert set(sandbox.__all__) == {
        "SANDBOX_PASSWORD",
        "SANDBOX_USERNAME",
        "PlaidError",
        "PlaidSandboxState",
        "RateLimit",
        "create_app",
    }
    for name in sandbox.__all__:
        assert getattr(sandbox, name) is not None


def test_app_keeps_its_state():
    app = sandbox.create_app(client_id="c", secret="s")
    assert isinstance(app.state.sandbox, sandbox.PlaidSandboxState)
    shared = sandbox.PlaidSandboxState(client_id="x", secret="y", product_ready_delay=0)
    app = sandbox.create_app(client_id="c", secret="s", state=shared)
    assert app.state.sandbox is shared
    assert (shared.client_id, shared.secret) == ("c", "s")


def test_isin_check_digit():
    assert isin_from_cusip("037833100") == "US0378331005"  # Apple
    assert isin_from_cusip("594918104") == "US5949181045"  # Microsoft


def test_holdings_reference_known_securities():
    for inst in SEEDED_INSTITUTIONS.values():
        for account in inst.accounts:
            for h in account.holdings:
                assert h.security in SECURITIES
            for t in account.transactions:
                assert t.security is None or t.security in SECURITIES
    ids = [s.security_id for s in SECURITIES.values()]
    assert len(set(ids)) == len(ids)
