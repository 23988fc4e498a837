"""Build the configured secret store from `Settings` (called at the edges only)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.config import Settings
from brokerlink.errors import ConfigurationError
from brokerlink.secrets.aws import AwsSecretsManagerStore
from brokerlink.secrets.kms import KmsEnvelopeStore
from brokerlink.secrets.local import LocalSecretStore, decode_key
from brokerlink.secrets.store import SecretStore

__all__ = ["LOCAL_KEY_FILE_NAME", "LOCAL_SECRETS_FILE_NAME", "secret_store_from_settings"]

LOCAL_SECRETS_FILE_NAME = "secrets.enc"
LOCAL_KEY_FILE_NAME = "secret.key"


def secret_store_from_settings(
    settings: Settings, *, sessionmaker: async_sessionmaker[AsyncSession] | None = None
) -> SecretStore:
    """The store `settings.secret_backend` names.

    - "local": `<data_dir>/secrets.enc`, keyed by `BROKERLINK_SECRET_KEY` or
      `<data_dir>/secret.key` (created with mode 0600 on first use).
    - "aws": Secrets Manager in `aws_region` (`aws_endpoint_url` for moto), names prefixed by
      `aws_secret_prefix`.
    - "kms": per-user secrets in the database (`sessionmaker` required) under `kms_key_id`,
      the rest in Secrets Manager as for "aws".
    """
    match settings.secret_backend:
        case "local":
            key = None
            if settings.secret_key is not None:
                key = decode_key(settings.secret_key.get_secret_value())
            return LocalSecretStore(
                settings.data_dir / LOCAL_SECRETS_FILE_NAME,
                key=key,
                key_file=settings.data_dir / LOCAL_KEY_FILE_NAME,
            )
        case "aws":
            return _secrets_manager(settings)
        case "kms":
            if not settings.kms_key_id:
                raise ConfigurationError("secret_backend 'kms' needs BROKERLINK_KMS_KEY_ID")
            if sessionmaker is None:
                raise ConfigurationError("secret_backend 'kms' needs a database sessionmaker")
            return KmsEnvelopeStore(
                sessionmaker,
                _secrets_manager(settings),
                key_id=settings.kms_key_id,
                region=settings.aws_region,
                endpoint_url=settings.aws_endpoint_url,
            )


def _secrets_manager(settings: Settings) -> AwsSecretsManagerStore:
    return AwsSecretsManagerStore(
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        prefix=settings.aws_secret_prefix,
    )
