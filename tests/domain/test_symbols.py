import pytest

from brokerlink.domain import cash_ticker, normalize_symbol


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AAPL", "AAPL"),
        (" aapl ", "AAPL"),
        ("AAPL.", "AAPL"),
        ("SHOP.TO", "SHOP"),
        ("VOD.L", "VOD"),
        ("BRK.B", "BRK.B"),
        ("brk.b.", "BRK.B"),
        ("RY.TO.", "RY"),
    ],
)
def test_normalize_symbol(raw, expected):
    assert normalize_symbol(raw) == expected


def test_cash_ticker():
    assert cash_ticker("usd") == "CUR:USD"
    with pytest.raises(ValueError, match="ISO 4217"):
        cash_ticker("dollars")
