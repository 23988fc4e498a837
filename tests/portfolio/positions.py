"""Short builders of `SourcePosition`s for the consolidation tests."""

from decimal import Decimal

from brokerlink.domain import Provider
from brokerlink.portfolio import SourcePosition

D = Decimal


def pos(
    ticker, qty, account, provider=Provider.SNAPTRADE, *, kind="equity", currency="USD", cost=None
):
    return SourcePosition(
        ticker=ticker,
        quantity=D(qty),
        currency=currency,
        kind=kind,
        account=account,
        provider=provider,
        cost_basis=D(cost) if cost is not None else None,
    )


def cash(amount, account, provider, currency="USD"):
    return pos(f"CUR:{currency}", amount, account, provider, kind="cash", currency=currency)
