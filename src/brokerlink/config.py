"""Settings from the environment. Read only at the edges (CLI, app lifespan, worker).

No credential has a default: with none set, brokerlink runs against its offline sandboxes.
"""

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SNAPTRADE_PRODUCTION_URL", "Settings", "get_settings"]

SNAPTRADE_PRODUCTION_URL = "https://api.snaptrade.com"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "brokerlink"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BROKERLINK_", extra="ignore", frozen=True)

    env: Literal["development", "testing", "production"] = "development"
    data_dir: Path = Field(default_factory=_default_data_dir)
    log_level: str = "INFO"
    log_json: bool = False

    # "embedded": code that would otherwise need provider credentials (`brokerlink.loaders`)
    # runs on the offline sandboxes, started in-process. "off" (the default): a missing
    # credential is a configuration error, never a silent switch to sandbox data.
    sandbox: Literal["off", "embedded"] = "off"

    # The store: SQLite under data_dir unless a URL is given (postgresql+psycopg://… in production).
    database_url: str | None = None
    database_echo: bool = False

    # Redis (redis://host:port/db): the job queue (`brokerlink worker`, `brokerlink beat`), and
    # the provider rate limits every process shares. Unset: jobs and the schedule run inside the
    # app process, and each process keeps its own limits.
    queue_url: str | None = None

    # Secrets: "local" (encrypted file under data_dir, the embedded default), "aws" (Secrets
    # Manager) or "kms" (per-user secrets envelope-encrypted in the database, app credentials in
    # Secrets Manager).
    secret_backend: Literal["local", "aws", "kms"] = "local"
    # Local store key (urlsafe base64 of 32 bytes); unset = a key file created with mode 0600.
    secret_key: SecretStr | None = None
    aws_region: str = "us-east-1"
    # For a local endpoint (moto in the tests); unset = AWS's own endpoints.
    aws_endpoint_url: str | None = None
    # Prefix of every secret name in Secrets Manager, e.g. "brokerlink/".
    aws_secret_prefix: str = ""
    kms_key_id: str | None = None

    # SnapTrade. The client id and consumer key are the app's credentials: no defaults.
    snaptrade_client_id: str | None = Field(
        default=None, validation_alias=_env("SNAPTRADE_CLIENT_ID", "BROKERLINK_SNAPTRADE_CLIENT_ID")
    )
    snaptrade_consumer_key: SecretStr | None = Field(
        default=None,
        validation_alias=_env("SNAPTRADE_CONSUMER_KEY", "BROKERLINK_SNAPTRADE_CONSUMER_KEY"),
    )
    # The signed path is always the path requested, so a base URL with `/api/v1` works too.
    snaptrade_base_url: str | None = Field(
        default=None, validation_alias=_env("SNAPTRADE_BASE_URL", "BROKERLINK_SNAPTRADE_BASE_URL")
    )
    snaptrade_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("SNAPTRADE_TIMEOUT_SECONDS", "BROKERLINK_SNAPTRADE_TIMEOUT_SECONDS"),
    )
    snaptrade_max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        validation_alias=_env("SNAPTRADE_MAX_RETRIES", "BROKERLINK_SNAPTRADE_MAX_RETRIES"),
    )
    snaptrade_max_backoff_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env(
            "SNAPTRADE_MAX_BACKOFF_SECONDS", "BROKERLINK_SNAPTRADE_MAX_BACKOFF_SECONDS"
        ),
    )
    # SnapTrade allows 250 requests per rolling minute per clientId; stay under it ourselves.
    snaptrade_rate_limit_per_minute: int = Field(
        default=250,
        gt=0,
        validation_alias=_env(
            "SNAPTRADE_RATE_LIMIT_PER_MINUTE", "BROKERLINK_SNAPTRADE_RATE_LIMIT_PER_MINUTE"
        ),
    )
    # The window that limit counts over: SnapTrade's is a minute. Shorter only against a sandbox
    # whose window is scaled down the same way (`brokerlink sandbox snaptrade --rate-window`).
    snaptrade_rate_limit_window_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias=_env(
            "SNAPTRADE_RATE_LIMIT_WINDOW_SECONDS", "BROKERLINK_SNAPTRADE_RATE_LIMIT_WINDOW_SECONDS"
        ),
    )
    # 10 per minute per account applies to personal keys only; 0 turns the account limit off.
    snaptrade_account_rate_limit_per_minute: int = Field(
        default=0,
        ge=0,
        validation_alias=_env(
            "SNAPTRADE_ACCOUNT_RATE_LIMIT_PER_MINUTE",
            "BROKERLINK_SNAPTRADE_ACCOUNT_RATE_LIMIT_PER_MINUTE",
        ),
    )
    snaptrade_plan: Literal["daily", "realtime"] = Field(
        default="daily",
        validation_alias=_env("SNAPTRADE_DATA_PLAN", "SNAPTRADE_PLAN", "BROKERLINK_SNAPTRADE_PLAN"),
    )
    enable_snaptrade: bool = Field(
        default=True, validation_alias=_env("ENABLE_SNAPTRADE", "BROKERLINK_ENABLE_SNAPTRADE")
    )
    snaptrade_admin_only: bool = Field(
        default=False,
        validation_alias=_env("SNAPTRADE_ADMIN_ONLY", "BROKERLINK_SNAPTRADE_ADMIN_ONLY"),
    )

    # Plaid. The client id and secret are the app's credentials: no defaults.
    plaid_client_id: str | None = Field(
        default=None, validation_alias=_env("PLAID_CLIENT_ID", "BROKERLINK_PLAID_CLIENT_ID")
    )
    plaid_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("PLAID_SECRET", "BROKERLINK_PLAID_SECRET")
    )
    plaid_env: Literal["sandbox", "production"] = Field(
        default="production", validation_alias=_env("PLAID_ENV", "BROKERLINK_PLAID_ENV")
    )
    plaid_base_url: str | None = Field(
        default=None, validation_alias=_env("PLAID_BASE_URL", "BROKERLINK_PLAID_BASE_URL")
    )
    # Retries of idempotent Plaid calls (billed and single-use ones are never repeated once
    # they may have arrived: providers/operations.py).
    plaid_max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        validation_alias=_env("PLAID_MAX_RETRIES", "BROKERLINK_PLAID_MAX_RETRIES"),
    )
    plaid_max_backoff_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("PLAID_MAX_BACKOFF_SECONDS", "BROKERLINK_PLAID_MAX_BACKOFF_SECONDS"),
    )

    # The web app and API (`brokerlink serve`, `brokerlink demo`). Port 0 picks a free port.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    demo_port: int = Field(default=8000, ge=0, le=65535)
    # Where providers send the browser back, when the app is behind a proxy (else the request's).
    public_url: str | None = None
    session_ttl_hours: float = Field(default=168.0, gt=0)
    # Request bodies over this many bytes are refused with 413 before they are read.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # Signs the state a provider's connection flow carries back. Set it when several app
    # processes serve the same users; unset, each process draws a random key at start.
    link_state_key: SecretStr | None = None
    # Sign-in throttling (brokerlink.auth.throttle): this many failed password sign-ins within
    # the window refuse further tries for the email (from anywhere), or from the client address
    # (for any email), until the oldest of them leaves the window.
    signin_max_failures: int = Field(default=5, ge=1)
    signin_max_failures_per_address: int = Field(default=20, ge=1)
    signin_window_minutes: float = Field(default=15.0, gt=0)
    # Behind this many reverse proxies that each append to X-Forwarded-For, the client address
    # is that header's entry this far from the right; 0 (direct): the connection's own address.
    trusted_proxy_hops: int = Field(default=0, ge=0, le=10)

    # Observability (brokerlink.observability). `/metrics` answers only a request bearing this
    # token (`Authorization: Bearer …`); unset, it is 404 like any unknown address. Its figures
    # read from the store and Redis at scrape time are reused for this long.
    metrics_token: SecretStr | None = None
    metrics_cache_seconds: float = Field(default=5.0, ge=0)
    # Provider call log rows wait in a bounded buffer and are written in batches, each in its own
    # short transaction, off the request path; a full buffer drops (and counts) the row.
    call_log_buffer: int = Field(default=10_000, ge=1)
    call_log_flush_seconds: float = Field(default=1.0, gt=0)

    # An operator's own coverage map (TOML, same schema as routing/coverage.toml). A file that
    # does not parse or validate never takes effect: the shipped (last good) map stays.
    coverage_file: Path | None = None

    # Background sync (brokerlink.sync.schedule): how old a connection's data may get before the
    # scheduler syncs it (one daily catch-all by default: polling costs more than it returns),
    # and how old data may be before an analysis syncs the user first.
    sync_interval_hours_snaptrade: float = Field(default=24.0, gt=0)
    sync_interval_hours_plaid: float = Field(default=24.0, gt=0)
    analysis_max_age_hours: float = Field(default=24.0, gt=0)
    # `brokerlink serve` runs the scheduler beside the app (checking every tick); turn it off
    # when a separate `brokerlink sync --watch` process does it.
    sync_in_app: bool = True
    sync_tick_seconds: float = Field(default=300.0, gt=0)
    # How long a sync's lease on a connection lasts: far longer than a sync takes, since only a
    # holder that died waits it out before another process may sync that connection.
    sync_lease_seconds: float = Field(default=900.0, gt=0)
    # Webhooks first: a provider that sends its webhooks to this app (true) has its
    # connections synced on a holdings webhook and otherwise once per catch-all interval
    # instead of its polling interval above; an account whose holdings webhook is the
    # missing-webhook time past due (24 h, the providers' daily cadence, plus these hours;
    # lacking any, since its last sync) is synced anyway. Off: polling.
    webhooks_snaptrade: bool = False
    webhooks_plaid: bool = False
    catchall_hours: float = Field(default=24.0, gt=0)
    missing_webhook_hours: float = Field(default=12.0, gt=0)

    # (`queue_url`, above, also carries the job queue: syncs run on `brokerlink worker`
    # processes and the schedule on `brokerlink beat`; unset, both run inside the app process.)
    # A job a worker took and never acknowledged (the worker died) is handed to another worker
    # after this long; it must exceed the longest job. Checked every restore interval.
    queue_visibility_timeout_seconds: float = Field(default=3600.0, gt=0)
    queue_restore_interval_seconds: float = Field(default=10.0, gt=0)

    # Cost guards (brokerlink.policies.cost_guard). Prices are public pay-as-you-go figures in USD.
    plaid_refresh_interval_hours: float = Field(default=24.0, ge=0)
    snaptrade_refresh_min_interval_seconds: float = Field(default=0.0, ge=0)
    cost_snaptrade_refresh: Decimal = Decimal("0.05")
    cost_plaid_investments_refresh: Decimal = Decimal("0.12")
    cost_snaptrade_monthly_per_user: Decimal = Decimal("1.75")
    cost_plaid_investments_monthly_per_item: Decimal = Decimal("0.18")
    budget_user_monthly: Decimal | None = None
    budget_snaptrade_monthly: Decimal | None = None
    budget_plaid_monthly: Decimal | None = None

    @property
    def database_url_resolved(self) -> str:
        """The SQLAlchemy URL to use: the setting, or an SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'brokerlink.db'}"

    @property
    def snaptrade_live(self) -> bool:
        """Real credentials in the environment switch SnapTrade from the sandbox to the service."""
        return bool(self.snaptrade_client_id and self.snaptrade_consumer_key)

    @property
    def plaid_live(self) -> bool:
        """Real Plaid credentials in the environment switch Plaid to the service."""
        return bool(self.plaid_client_id and self.plaid_secret)

    @property
    def snaptrade_url(self) -> str | None:
        """The base URL to call, or None when the embedded sandbox should serve."""
        if self.snaptrade_base_url:
            return self.snaptrade_base_url.rstrip("/")
        return SNAPTRADE_PRODUCTION_URL if self.snaptrade_live else None


@lru_cache
def get_settings() -> Settings:
    return Settings()
