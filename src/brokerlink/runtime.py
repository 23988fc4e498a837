"""Provider connectors built from settings, at an edge (CLI, app lifespan, worker).

Real credentials in the environment select the real services. Without them a provider is
available only when its URL is given explicitly, pointing at a running sandbox
(`brokerlink sandbox snaptrade|plaid`), which is then called with the sandbox's own documented
credentials. A provider with neither is simply absent, and syncs say so per connection. With
`BROKERLINK_QUEUE_URL` set, the clients' rate-limit windows live in that Redis, shared by every
process; without it, each process keeps its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from brokerlink.config import Settings
from brokerlink.domain.enums import Provider
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.limits import Limits
from brokerlink.providers.plaid import PlaidClient, PlaidConnector
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnector
from brokerlink.routing.coverage import load_coverage
from brokerlink.sandbox_ids import (
    PLAID_SANDBOX_CLIENT_ID,
    PLAID_SANDBOX_SECRET,
    SANDBOX_CLIENT_ID,
    SANDBOX_CONSUMER_KEY,
)
from brokerlink.secrets import SecretStore

__all__ = ["Connectors", "plaid_retry", "provider_connectors", "shared_limits", "snaptrade_retry"]


def snaptrade_retry(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.snaptrade_max_retries,
        max_delay=settings.snaptrade_max_backoff_seconds,
    )


def plaid_retry(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.plaid_max_retries, max_delay=settings.plaid_max_backoff_seconds
    )


def shared_limits(settings: Settings) -> Limits | None:
    """The rate-limit windows every process shares (in Redis), when a queue URL is set."""
    if not settings.queue_url:
        return None
    from brokerlink.providers.redis_limits import RedisLimits

    return RedisLimits(settings.queue_url)


@dataclass
class Connectors:
    snaptrade: SnapTradeConnector | None = None
    plaid: PlaidConnector | None = None

    def by_provider(self) -> dict[Provider, SnapTradeConnector | PlaidConnector]:
        found: dict[Provider, SnapTradeConnector | PlaidConnector] = {}
        if self.snaptrade is not None:
            found[Provider.SNAPTRADE] = self.snaptrade
        if self.plaid is not None:
            found[Provider.PLAID] = self.plaid
        return found

    def describe(self) -> str:
        names = [p.value for p in self.by_provider()]
        return ", ".join(names) if names else "none"


@asynccontextmanager
async def provider_connectors(
    settings: Settings,
    secrets: SecretStore,
    *,
    snaptrade_url: str | None = None,
    plaid_url: str | None = None,
) -> AsyncIterator[Connectors]:
    """The connectors the settings allow, open for the duration of the block."""
    institution_slug = load_coverage().slug_for_snaptrade
    found = Connectors()
    async with AsyncExitStack() as stack:
        limits = shared_limits(settings)
        if limits is not None:
            stack.push_async_callback(limits.aclose)
        if settings.snaptrade_live:
            client = SnapTradeClient.from_settings(settings, base_url=snaptrade_url, limits=limits)
            found.snaptrade = SnapTradeConnector(
                await stack.enter_async_context(client),
                secrets,
                institution_lookup=institution_slug,
            )
        elif snaptrade_url:
            client = SnapTradeClient(
                SANDBOX_CLIENT_ID,
                SANDBOX_CONSUMER_KEY,
                base_url=snaptrade_url,
                retry=snaptrade_retry(settings),
                limits=limits,
            )
            found.snaptrade = SnapTradeConnector(
                await stack.enter_async_context(client),
                secrets,
                institution_lookup=institution_slug,
            )
        if settings.plaid_live:
            assert settings.plaid_client_id is not None
            assert settings.plaid_secret is not None
            plaid = PlaidClient(
                settings.plaid_client_id,
                settings.plaid_secret,
                environment=settings.plaid_env,
                base_url=plaid_url or settings.plaid_base_url,
                retry=plaid_retry(settings),
                limits=limits,
            )
            found.plaid = PlaidConnector(await stack.enter_async_context(plaid), secrets)
        elif plaid_url:
            plaid = PlaidClient(
                PLAID_SANDBOX_CLIENT_ID,
                PLAID_SANDBOX_SECRET,
                base_url=plaid_url,
                retry=plaid_retry(settings),
                limits=limits,
            )
            found.plaid = PlaidConnector(await stack.enter_async_context(plaid), secrets)
        yield found
