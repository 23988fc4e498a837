"""Provider webhooks received: verified, recorded once per event, acted on (`service.py`)."""

from brokerlink.webhooks.actions import Action
from brokerlink.webhooks.service import WebhookReceipt, WebhookReceiver

__all__ = ["Action", "WebhookReceipt", "WebhookReceiver"]
