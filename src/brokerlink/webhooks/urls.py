"""Where providers send webhooks: the app's public URL and the route of each provider."""

from __future__ import annotations

from brokerlink.domain.enums import Provider

__all__ = ["WEBHOOK_PATHS", "webhook_url"]

WEBHOOK_PATHS: dict[Provider, str] = {
    Provider.SNAPTRADE: "/webhooks/snaptrade",
    Provider.PLAID: "/webhooks/plaid",
}


def webhook_url(public_url: str | None, provider: Provider) -> str | None:
    """The address `provider` posts webhooks to; None while the app's public URL is unknown."""
    if not public_url:
        return None
    return public_url.rstrip("/") + WEBHOOK_PATHS[provider]
