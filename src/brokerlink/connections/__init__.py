"""Connections: link an institution through the right provider, store it, refresh it."""

from brokerlink.connections.service import (
    LinkResult,
    LinkService,
    LinkStart,
    ProviderNotConfigured,
)

__all__ = ["LinkResult", "LinkService", "LinkStart", "ProviderNotConfigured"]
