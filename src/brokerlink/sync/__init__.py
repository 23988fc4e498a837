"""Background sync: providers' accounts and positions into the store (`SyncEngine`)."""

from brokerlink.sync.engine import AccountOutcome, ConnectionOutcome, SyncEngine, SyncSummary
from brokerlink.sync.schedule import Scheduler, SyncSchedule, due

__all__ = [
    "AccountOutcome",
    "ConnectionOutcome",
    "Scheduler",
    "SyncEngine",
    "SyncSchedule",
    "SyncSummary",
    "due",
]
