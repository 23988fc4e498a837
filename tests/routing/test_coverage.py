"""The coverage map: shipped data, validation that names the bad entry, last-good on reload."""

import pytest

from brokerlink.domain import Provider
from brokerlink.routing import CoverageError, CoverageRegistry, load_coverage, normalize_name

SHIPPED = load_coverage()


def test_shipped_map_covers_the_institutions_users_pick_from():
    assert len(SHIPPED) >= 14
    for name in (
        "Fidelity",
        "Charles Schwab",
        "E*TRADE",
        "Vanguard",
        "Interactive Brokers",
        "Robinhood",
        "Merrill",
        "Chase",
        "Bank of America",
        "Wells Fargo",
        "Citi",
        "Capital One",
        "401(k)",
    ):
        assert SHIPPED.match(name) is not None, name


@pytest.mark.parametrize(
    ("slug", "preferred", "fallback", "trading"),
    [
        ("schwab", Provider.SNAPTRADE, Provider.PLAID, True),
        ("fidelity", Provider.SNAPTRADE, None, False),
        ("interactive-brokers", Provider.SNAPTRADE, Provider.PLAID, True),
        ("etrade", Provider.SNAPTRADE, Provider.PLAID, True),
        ("vanguard", Provider.SNAPTRADE, Provider.PLAID, False),
        ("chase", Provider.PLAID, None, False),
        ("bank-of-america", Provider.PLAID, None, False),
        ("empower", Provider.PLAID, None, False),
    ],
)
def test_product_defaults(slug, preferred, fallback, trading):
    entry = SHIPPED.get(slug)
    assert entry is not None
    assert entry.preferred_provider is preferred
    assert entry.fallback_provider is fallback
    assert entry.allow_trading is trading


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Charles Schwab", "schwab"),
        ("schwab", "schwab"),
        ("SCHWAB", "schwab"),
        ("  Charles   Schwab & Co ", "schwab"),
        ("e-trade", "etrade"),
        ("ETRADE", "etrade"),
        ("E*Trade", "etrade"),
        ("ibkr", "interactive-brokers"),
        ("INTERACTIVE-BROKERS-FLEX", "interactive-brokers"),
        ("Bank Of America", "bank-of-america"),
        ("J.P. Morgan Chase", "chase"),
    ],
)
def test_names_match_case_and_punctuation_insensitively_through_aliases(name, slug):
    entry = SHIPPED.match(name)
    assert entry is not None
    assert entry.slug == slug


def test_normalize_name():
    assert normalize_name("E*TRADE") == normalize_name("e-trade") == "etrade"
    assert normalize_name("AT&T") == "atandt"


def _write(tmp_path, body):
    path = tmp_path / "coverage.toml"
    path.write_text(body)
    return path


GOOD = """
[institutions.acme]
name = "Acme Brokerage"
type = "brokerage"
preferred = "snaptrade"
allow_trading = true
snaptrade_slug = "ACME"
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not toml [", "not valid TOML"),
        ("[other]\nx = 1\n", "expected an [institutions.<slug>] table"),
        (
            GOOD.replace('preferred = "snaptrade"', 'preferred = "yodlee"'),
            "institutions.acme: preferred",
        ),
        (GOOD.replace('snaptrade_slug = "ACME"', ""), "institutions.acme: entry: Value error"),
        (
            GOOD.replace(
                'preferred = "snaptrade"', 'preferred = "plaid"\nplaid_institution_id = "x"'
            ),
            "allow_trading needs snaptrade",
        ),
        (GOOD + GOOD.replace("acme]", "acme-two]"), "already used by institutions.acme"),
        (GOOD.replace("type =", "colour = 1\ntype ="), "institutions.acme: colour"),
    ],
)
def test_invalid_files_are_rejected_naming_the_entry(tmp_path, body, message):
    with pytest.raises(CoverageError, match=r".*") as info:
        load_coverage(_write(tmp_path, body))
    assert message in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_a_bad_reload_keeps_the_last_good_map(tmp_path):
    registry = CoverageRegistry()
    assert registry.reload(_write(tmp_path, GOOD)) is None
    assert registry.current.match("Acme") is not None

    error = registry.reload(_write(tmp_path, GOOD.replace("preferred", "prefered")))

    assert isinstance(error, CoverageError)
    assert registry.last_error is error
    assert registry.current.match("Acme Brokerage") is not None  # still the last good map
    assert registry.reload(None) is None
    assert registry.current.match("Acme") is None
    assert registry.current.match("Schwab") is not None


def test_an_unreadable_file_is_an_error(tmp_path):
    with pytest.raises(CoverageError, match="cannot read"):
        load_coverage(tmp_path / "missing.toml")
