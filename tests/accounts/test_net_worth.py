"""Net worth from the accounts' read models: assets minus what is owed, per currency."""

from __future__ import annotations

from decimal import Decimal

from brokerlink.accounts.schemas import AccountOut, Balances, CapabilitiesOut
from brokerlink.accounts.service import net_worth

D = Decimal


def _account(i: int, total: dict[str, str], *, type: str = "brokerage") -> AccountOut:
    amounts = {c: D(v) for c, v in total.items()}
    return AccountOut(
        id=i,
        connection_id=1,
        institution="Bank",
        institution_slug=None,
        name=f"Account {i}",
        mask=None,
        type=type,
        currency="USD",
        provider="plaid",
        capabilities=CapabilitiesOut(trading=False, realtime=False),
        status="fresh",
        stale=False,
        last_synced_at=None,
        data_as_of=None,
        last_error=None,
        last_error_at=None,
        next_refresh_allowed_at=None,
        positions=1,
        balances=Balances(cash=amounts, holdings_value={}, total=amounts),
    )


class TestNetWorth:
    def test_a_negative_balance_is_owed(self) -> None:
        worth = net_worth([_account(1, {"USD": "1000"}), _account(2, {"USD": "-410"})])
        [line] = worth.lines
        assert (line.assets, line.liabilities, line.net) == (D(1000), D(410), D(590))
        assert worth.base_net == D(590)
        assert worth.liability_accounts == 1

    def test_a_loan_is_owed_whichever_sign_it_was_given(self) -> None:
        worth = net_worth([_account(1, {"USD": "500"}), _account(2, {"USD": "200"}, type="loan")])
        assert worth.base_net == D(300)

    def test_other_currencies_stay_apart_and_no_rate_is_invented(self) -> None:
        worth = net_worth(
            [_account(1, {"USD": "100", "EUR": "50"}), _account(2, {"EUR": "-20"})], "usd"
        )
        assert worth.base_currency == "USD"
        assert worth.base_net is None
        assert worth.unconverted == ["EUR"]
        assert {line.currency: line.net for line in worth.lines} == {"EUR": D(30), "USD": D(100)}

    def test_nothing_linked(self) -> None:
        worth = net_worth([])
        assert (worth.lines, worth.base_net, worth.accounts) == ([], D(0), 0)

    def test_a_duplicated_accounts_other_copy_is_not_counted(self) -> None:
        accounts = [_account(1, {"USD": "1000"}), _account(2, {"USD": "1000"})]
        worth = net_worth(accounts, left_out={2})
        assert (worth.base_net, worth.accounts, worth.duplicates_left_out) == (D(1000), 1, 1)
