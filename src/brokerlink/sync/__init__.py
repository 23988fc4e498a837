"""Background sync: providers' accounts and positions into the store (`SyncEngine`)."""

from brokerlink.sync.engine import AccountOutcome, ConnectionOutcome, SyncEngine, SyncSummary

__all__ = ["AccountOutcome", "ConnectionOutcome", "SyncEngine", "SyncSummary"]
