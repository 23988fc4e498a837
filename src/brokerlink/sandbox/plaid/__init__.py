"""An offline Plaid emulator (ASGI) that the official plaid-python SDK accepts.

    app = create_app(client_id="cid", secret="sec", product_ready_delay=0)
    app.state.sandbox   # the PlaidSandboxState: items, link tokens, faults, webhooks outbox

Sandbox Link credentials are `user_good` / `pass_good`.
"""

from brokerlink.sandbox.plaid.app import create_app
from brokerlink.sandbox.plaid.errors import PlaidError
from brokerlink.sandbox.plaid.state import (
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    PlaidSandboxState,
    RateLimit,
)

__all__ = [
    "SANDBOX_PASSWORD",
    "SANDBOX_USERNAME",
    "PlaidError",
    "PlaidSandboxState",
    "RateLimit",
    "create_app",
]
