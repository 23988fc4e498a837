"""`secret_store_from_settings`: the backend setting picks the store."""

from __future__ import annotations

import pytest

from brokerlink.config import Settings
from brokerlink.errors import ConfigurationError
from brokerlink.secrets import (
    AwsSecretsManagerStore,
    KmsEnvelopeStore,
    LocalSecretStore,
    generate_key,
    secret_store_from_settings,
)


class TestLocal:
    def test_default_is_the_local_file_under_the_data_dir(self, tmp_path):
        store = secret_store_from_settings(Settings(data_dir=tmp_path))

        assert isinstance(store, LocalSecretStore)
        assert store.path == tmp_path / "secrets.enc"
        assert store.key_file == tmp_path / "secret.key"

    @pytest.mark.asyncio
    async def test_secret_key_setting_is_used(self, tmp_path):
        key = generate_key()
        settings = Settings(data_dir=tmp_path, secret_key=key)
        await secret_store_from_settings(settings).put("misc/a", {"v": 1})

        assert not (tmp_path / "secret.key").exists()
        again = secret_store_from_settings(Settings(data_dir=tmp_path, secret_key=key))
        assert await again.get("misc/a") == {"v": 1}

    def test_bad_secret_key_is_a_configuration_error(self, tmp_path):
        with pytest.raises(ConfigurationError):
            secret_store_from_settings(Settings(data_dir=tmp_path, secret_key="nope"))


class TestAws:
    def test_aws(self):
        settings = Settings(
            secret_backend="aws",
            aws_region="eu-west-1",
            aws_endpoint_url="http://127.0.0.1:1",
            aws_secret_prefix="brokerlink/",
        )

        store = secret_store_from_settings(settings)

        assert isinstance(store, AwsSecretsManagerStore)
        assert store.prefix == "brokerlink/"
        assert store._client.meta.region_name == "eu-west-1"
        assert store._client.meta.endpoint_url == "http://127.0.0.1:1"


class TestKms:
    def test_kms(self, sessionmaker):
        settings = Settings(secret_backend="kms", kms_key_id="alias/brokerlink")

        store = secret_store_from_settings(settings, sessionmaker=sessionmaker)

        assert isinstance(store, KmsEnvelopeStore)
        assert store.key_id == "alias/brokerlink"
        assert isinstance(store.inner, AwsSecretsManagerStore)

    def test_kms_needs_a_key_id(self, sessionmaker):
        with pytest.raises(ConfigurationError, match="KMS_KEY_ID"):
            secret_store_from_settings(Settings(secret_backend="kms"), sessionmaker=sessionmaker)

    def test_kms_needs_a_sessionmaker(self):
        settings = Settings(secret_backend="kms", kms_key_id="alias/brokerlink")

        with pytest.raises(ConfigurationError, match="sessionmaker"):
            secret_store_from_settings(settings)
