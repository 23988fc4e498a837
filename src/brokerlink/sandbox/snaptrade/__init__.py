"""The offline SnapTrade sandbox: `create_app(client_id=…, consumer_key=…)` and its state."""

from brokerlink.sandbox.snaptrade.app import create_app
from brokerlink.sandbox.snaptrade.state import SandboxState

__all__ = ["SandboxState", "create_app"]
