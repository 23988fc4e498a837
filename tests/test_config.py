from brokerlink.config import SNAPTRADE_PRODUCTION_URL, Settings


def test_no_credentials_means_sandbox(monkeypatch):
    settings = Settings()
    assert settings.snaptrade_client_id is None
    assert settings.snaptrade_consumer_key is None
    assert not settings.snaptrade_live
    assert settings.snaptrade_url is None


def test_real_credentials_switch_to_the_service(monkeypatch):
    monkeypatch.setenv("SNAPTRADE_CLIENT_ID", "CLIENT")
    monkeypatch.setenv("SNAPTRADE_CONSUMER_KEY", "not-a-real-key")
    settings = Settings()
    assert settings.snaptrade_live
    assert settings.snaptrade_url == SNAPTRADE_PRODUCTION_URL
    assert "not-a-real-key" not in repr(settings)


def test_base_url_setting_keeps_api_v1_prefix(monkeypatch):
    monkeypatch.setenv("SNAPTRADE_BASE_URL", "https://api.snaptrade.com/api/v1/")
    assert Settings().snaptrade_url == "https://api.snaptrade.com/api/v1"


def test_feature_flags_and_limits(monkeypatch):
    monkeypatch.setenv("ENABLE_SNAPTRADE", "false")
    monkeypatch.setenv("SNAPTRADE_ADMIN_ONLY", "true")
    monkeypatch.setenv("SNAPTRADE_RATE_LIMIT_PER_MINUTE", "100")
    monkeypatch.setenv("BROKERLINK_SNAPTRADE_MAX_RETRIES", "5")
    settings = Settings()
    assert settings.enable_snaptrade is False
    assert settings.snaptrade_admin_only is True
    assert settings.snaptrade_rate_limit_per_minute == 100
    assert settings.snaptrade_max_retries == 5
