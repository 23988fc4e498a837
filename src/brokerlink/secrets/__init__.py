"""Secret stores: one interface (`SecretStore`), local / AWS / KMS-envelope backends, typed records.

See docs/secrets.md for the backends, the names and the cost trade-off.

Imports are lazy (PEP 562): `brokerlink.secrets.LocalSecretStore` does not load boto3 or
SQLAlchemy, which only the AWS and KMS backends need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brokerlink.secrets.aws import AwsSecretsManagerStore
    from brokerlink.secrets.copy import copy_secrets
    from brokerlink.secrets.credentials import (
        AppCredentials,
        AppCredentialsProvider,
        PlaidAccessToken,
        SnapTradeUserSecret,
        existing_snaptrade_user,
        get_app_credentials,
        get_plaid_access_token,
        get_snaptrade_user_secret,
        institution_slug,
        list_user_snaptrade_connections,
        store_app_credentials,
        store_plaid_access_token,
        store_snaptrade_user_secret,
    )
    from brokerlink.secrets.factory import secret_store_from_settings
    from brokerlink.secrets.kms import PER_USER_PREFIXES, KmsEnvelopeStore
    from brokerlink.secrets.local import LocalSecretStore, decode_key, generate_key
    from brokerlink.secrets.memory import MemorySecretStore
    from brokerlink.secrets.store import (
        MAX_SECRET_BYTES,
        InvalidSecret,
        SecretAccessDenied,
        SecretNotFound,
        SecretStore,
        SecretStoreError,
        SecretStoreUnavailable,
        SecretThrottled,
        SecretValue,
        plaid_access_token_name,
        snaptrade_app_credentials_name,
        snaptrade_user_secret_name,
    )

__all__ = [
    "MAX_SECRET_BYTES",
    "PER_USER_PREFIXES",
    "AppCredentials",
    "AppCredentialsProvider",
    "AwsSecretsManagerStore",
    "InvalidSecret",
    "KmsEnvelopeStore",
    "LocalSecretStore",
    "MemorySecretStore",
    "PlaidAccessToken",
    "SecretAccessDenied",
    "SecretNotFound",
    "SecretStore",
    "SecretStoreError",
    "SecretStoreUnavailable",
    "SecretThrottled",
    "SecretValue",
    "SnapTradeUserSecret",
    "copy_secrets",
    "decode_key",
    "existing_snaptrade_user",
    "generate_key",
    "get_app_credentials",
    "get_plaid_access_token",
    "get_snaptrade_user_secret",
    "institution_slug",
    "list_user_snaptrade_connections",
    "plaid_access_token_name",
    "secret_store_from_settings",
    "snaptrade_app_credentials_name",
    "snaptrade_user_secret_name",
    "store_app_credentials",
    "store_plaid_access_token",
    "store_snaptrade_user_secret",
]

_MODULES = {
    "copy_secrets": "brokerlink.secrets.copy",
    "AppCredentials": "brokerlink.secrets.credentials",
    "AppCredentialsProvider": "brokerlink.secrets.credentials",
    "AwsSecretsManagerStore": "brokerlink.secrets.aws",
    "InvalidSecret": "brokerlink.secrets.store",
    "KmsEnvelopeStore": "brokerlink.secrets.kms",
    "LocalSecretStore": "brokerlink.secrets.local",
    "MAX_SECRET_BYTES": "brokerlink.secrets.store",
    "MemorySecretStore": "brokerlink.secrets.memory",
    "PER_USER_PREFIXES": "brokerlink.secrets.kms",
    "PlaidAccessToken": "brokerlink.secrets.credentials",
    "SecretAccessDenied": "brokerlink.secrets.store",
    "SecretNotFound": "brokerlink.secrets.store",
    "SecretStore": "brokerlink.secrets.store",
    "SecretStoreError": "brokerlink.secrets.store",
    "SecretStoreUnavailable": "brokerlink.secrets.store",
    "SecretThrottled": "brokerlink.secrets.store",
    "SecretValue": "brokerlink.secrets.store",
    "SnapTradeUserSecret": "brokerlink.secrets.credentials",
    "decode_key": "brokerlink.secrets.local",
    "existing_snaptrade_user": "brokerlink.secrets.credentials",
    "generate_key": "brokerlink.secrets.local",
    "get_app_credentials": "brokerlink.secrets.credentials",
    "get_plaid_access_token": "brokerlink.secrets.credentials",
    "get_snaptrade_user_secret": "brokerlink.secrets.credentials",
    "institution_slug": "brokerlink.secrets.credentials",
    "list_user_snaptrade_connections": "brokerlink.secrets.credentials",
    "plaid_access_token_name": "brokerlink.secrets.store",
    "secret_store_from_settings": "brokerlink.secrets.factory",
    "snaptrade_app_credentials_name": "brokerlink.secrets.store",
    "snaptrade_user_secret_name": "brokerlink.secrets.store",
    "store_app_credentials": "brokerlink.secrets.credentials",
    "store_plaid_access_token": "brokerlink.secrets.credentials",
    "store_snaptrade_user_secret": "brokerlink.secrets.credentials",
}


def __getattr__(name: str) -> Any:
    try:
        module = _MODULES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
