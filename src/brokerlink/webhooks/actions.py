"""What a verified webhook comes to, as each provider's handlers report it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Action"]


@dataclass(frozen=True)
class Action:
    """The outcome of acting on one event.

    `follow_up`: the connection must be synced (a job does it, and marks the event); otherwise
    the event was handled inline (`error`: it could not be, and retrying cannot help). `note`
    says why nothing was done, for the log.
    """

    connection_id: int | None = None
    account_id: int | None = None
    follow_up: bool = False
    error: str | None = None
    note: str | None = None
