"""The public surface of `brokerlink.secrets`."""

import brokerlink.secrets
from brokerlink.secrets import SecretStore


def test_all_names_resolve():
    for name in brokerlink.secrets.__all__:
        assert getattr(brokerlink.secrets, name) is not None


def test_exported_names():
    assert set(brokerlink.secrets.__all__) >= {
        "SecretStore",
        "SecretNotFound",
        "SecretAccessDenied",
        "SecretThrottled",
        "SecretStoreUnavailable",
        "LocalSecretStore",
        "AwsSecretsManagerStore",
        "KmsEnvelopeStore",
        "MemorySecretStore",
        "secret_store_from_settings",
        "AppCredentials",
        "AppCredentialsProvider",
        "SnapTradeUserSecret",
        "PlaidAccessToken",
        "list_user_snaptrade_connections",
    }


def test_backends_satisfy_the_protocol(tmp_path):
    assert isinstance(brokerlink.secrets.MemorySecretStore(), SecretStore)
    assert isinstance(brokerlink.secrets.LocalSecretStore(tmp_path / "s.enc"), SecretStore)
