"""Background sync: providers' accounts and positions into the store (`SyncEngine`), the
schedule every process claims from, and the jobs that run syncs in the app or on workers."""

from brokerlink.sync.engine import AccountOutcome, ConnectionOutcome, SyncEngine, SyncSummary
from brokerlink.sync.jobs import Job, JobKind, JobRunner, Jobs
from brokerlink.sync.schedule import Claim, Scheduler, SyncSchedule, claim_due, settle

__all__ = [
    "AccountOutcome",
    "Claim",
    "ConnectionOutcome",
    "Job",
    "JobKind",
    "JobRunner",
    "Jobs",
    "Scheduler",
    "SyncEngine",
    "SyncSchedule",
    "SyncSummary",
    "claim_due",
    "settle",
]
