"""The package's public surface is exactly its `__all__`."""

from pathlib import Path

import brokerlink.providers.plaid as plaid


def test_exported_members():
    exported = set(plaid.__all__)
    assert exported == {
        "PLAID_VERSION",
        "InstitutionDown",
        "InvalidAccessToken",
        "ItemNotFound",
        "ItemDirectory",
        "LinkNotOpened",
        "LinkProducts",
        "LoginRequired",
        "PlaidAuthFailed",
        "PlaidClient",
        "PlaidConnector",
        "PlaidError",
        "PlaidItem",
        "PlaidMalformedResponse",
        "PlaidRateLimited",
        "PlaidRejected",
        "PlaidUnavailable",
        "ProductNotReady",
        "ProductsNotSupported",
        "WebhookOutcome",
        "products_for",
    }
    for name in exported - {"PLAID_VERSION"}:
        assert getattr(plaid, name).__module__.startswith("brokerlink.providers.plaid")


def test_src_never_imports_the_sdk():
    root = Path(plaid.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "import plaid\n" not in text
        assert "from plaid" not in text


def test_provider_code_imports_no_feature_module():
    # The Item directory is a protocol here; the application implements it outside.
    root = Path(plaid.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        for feature in ("connections", "repositories", "models", "sync", "api"):
            assert f"from brokerlink.{feature}" not in text, (path.name, feature)
            assert f"import brokerlink.{feature}" not in text, (path.name, feature)
