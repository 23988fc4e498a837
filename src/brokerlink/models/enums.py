"""Store-only enumerations (states the database keeps; the neutral ones live in `domain`)."""

from enum import StrEnum

__all__ = [
    "AccountSyncStatus",
    "ConnectionStatus",
    "LedgerStatus",
    "OrderRecordState",
    "PositionStatus",
    "RefreshStatus",
    "RefreshTrigger",
]


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    BROKEN = "broken"
    DISABLED = "disabled"


class AccountSyncStatus(StrEnum):
    """How current an account's stored data is."""

    PENDING = "pending"  # linked, never synced
    FRESH = "fresh"  # the last sync succeeded
    STALE = "stale"  # the last sync failed; the last good positions are kept
    BROKEN = "broken"  # the provider needs the user to reconnect


class OrderRecordState(StrEnum):
    """Where an order request stands on our side."""

    SENDING = "sending"  # committed before the provider call; outcome not yet known
    PLACED = "placed"  # the provider accepted it
    REJECTED = "rejected"  # the provider refused it; nothing was placed
    UNKNOWN = "unknown"  # the call failed in a way that may or may not have placed it
    NOT_PLACED = "not_placed"  # reconciled: the provider has no such order; nothing was placed


class PositionStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class RefreshTrigger(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    WEBHOOK = "webhook"


class RefreshStatus(StrEnum):
    REQUESTED = "requested"  # recorded before the intent pattern; counted like `sending`
    SENDING = "sending"  # committed before the provider call; at most one per connection
    IN_DOUBT = "in_doubt"  # the call may have reached the provider; its answer was lost
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"
    COMPLETED = "completed"


class LedgerStatus(StrEnum):
    """Where a billable call stands in the cost ledger. Every status but `void` counts."""

    PENDING = "pending"  # committed before the provider call
    BILLED = "billed"  # the provider accepted it
    IN_DOUBT = "in_doubt"  # the answer was lost: counted as billed, never sent again blind
    VOID = "void"  # the provider refused it or it never left: nothing was charged


def sql_in(column: str, enum_cls: type[StrEnum]) -> str:
    """The body of a CHECK constraint admitting exactly the members of `enum_cls`."""
    values = ", ".join(f"'{member.value}'" for member in enum_cls)
    return f"{column} IN ({values})"
