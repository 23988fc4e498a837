"""What a sync run did: per account, per connection, and the totals the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from brokerlink.domain.enums import Provider

__all__ = ["AccountOutcome", "ConnectionOutcome", "SyncSummary"]


@dataclass
class AccountOutcome:
    provider_account_id: str
    ok: bool
    positions: int = 0
    error: str | None = None
    # Not read: the provider has not re-synced the holdings stored (`SyncReads`).
    unchanged: bool = False


@dataclass
class ConnectionOutcome:
    connection_id: int
    provider: Provider
    ok: bool
    error: str | None = None
    broken: bool = False
    accounts: list[AccountOutcome] = field(default_factory=list)
    # Not fetched: another task or process holds the connection's sync lease.
    skipped: bool = False
    # When this run took the connection, before it read anything: what it stored is no older.
    started_at: datetime | None = None


@dataclass
class SyncSummary:
    """What a run did: per connection, and totals the CLI prints."""

    connections: list[ConnectionOutcome] = field(default_factory=list)
    provider_calls: int = 0
    seconds: float = 0.0

    @property
    def connections_ok(self) -> int:
        return sum(1 for c in self.connections if c.ok)

    @property
    def connections_failed(self) -> int:
        return sum(1 for c in self.connections if not c.ok)

    @property
    def accounts_synced(self) -> int:
        return sum(1 for c in self.connections for a in c.accounts if a.ok)

    @property
    def accounts_unchanged(self) -> int:
        return sum(1 for c in self.connections for a in c.accounts if a.unchanged)

    @property
    def positions_written(self) -> int:
        return sum(a.positions for c in self.connections for a in c.accounts)

    @property
    def calls_per_account(self) -> float:
        accounts = sum(len(c.accounts) for c in self.connections)
        return self.provider_calls / accounts if accounts else 0.0

    def merge(self, other: SyncSummary) -> None:
        self.connections.extend(other.connections)
        self.provider_calls += other.provider_calls
