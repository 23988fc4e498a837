"""The offline sandboxes' own client ids and keys, documented in the README.

They open nothing but a local emulator (`brokerlink sandbox snaptrade|plaid`, the demo).
"""

__all__ = [
    "PLAID_SANDBOX_CLIENT_ID",
    "PLAID_SANDBOX_SECRET",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CONSUMER_KEY",
]

SANDBOX_CLIENT_ID = "BROKERLINK-SANDBOX"
SANDBOX_CONSUMER_KEY = "sandbox-consumer-key-not-a-secret"
PLAID_SANDBOX_CLIENT_ID = "brokerlink-plaid-sandbox"
PLAID_SANDBOX_SECRET = "sandbox-secret-not-a-secret"
