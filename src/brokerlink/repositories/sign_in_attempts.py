from datetime import datetime
from typing import Literal

from sqlalchemy import delete, or_, select, text, update

from brokerlink.models import SignInAttempt
from brokerlink.repositories._base import Repository

__all__ = ["SignInAttemptRepository"]

# Advisory lock classes (PostgreSQL's two-key form), one per kind of throttling key.
_LOCK_CLASS = {"email": 1, "address": 2}


class SignInAttemptRepository(Repository):
    """Sign-in attempts in the throttling window, by the email's key and by client address."""

    async def lock(self, email_key: str, address: str) -> None:
        """Serialise the transactions that count and reserve attempts on these keys.

        PostgreSQL: transaction-level advisory locks, the email's before the address's (one
        order everywhere, so two sign-ins cannot wait on each other). SQLite needs none: every
        transaction begins IMMEDIATE, which holds the database's write lock until it ends.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        for kind, key in (("email", email_key), ("address", address)):
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:class, hashtext(:key))"),
                {"class": _LOCK_CLASS[kind], "key": key},
            )

    async def prune(self, before: datetime) -> None:
        """Forget the attempts that have left the window."""
        await self.session.execute(delete(SignInAttempt).where(SignInAttempt.started_at <= before))

    async def recent(
        self, by: Literal["email", "address"], key: str, *, since: datetime, limit: int
    ) -> list[datetime]:
        """When the latest `limit` attempts on `key` started (newest first), since `since`."""
        column = SignInAttempt.email_key if by == "email" else SignInAttempt.address
        rows = await self.session.scalars(
            select(SignInAttempt.started_at)
            .where(column == key, SignInAttempt.started_at > since)
            .order_by(SignInAttempt.started_at.desc())
            .limit(limit)
        )
        return list(rows)

    async def reserve(self, email_key: str, address: str, when: datetime) -> int:
        row = SignInAttempt(
            email_key=email_key, address=address, outcome="pending", started_at=when
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def mark_failed(self, attempt_id: int) -> None:
        await self.session.execute(
            update(SignInAttempt).where(SignInAttempt.id == attempt_id).values(outcome="failed")
        )

    async def clear_account(self, email_key: str, attempt_id: int) -> None:
        """A successful sign-in: its own attempt and the account's failures are forgotten
        (attempts still being checked stay, and count if they fail)."""
        await self.session.execute(
            delete(SignInAttempt).where(
                SignInAttempt.email_key == email_key,
                or_(SignInAttempt.outcome == "failed", SignInAttempt.id == attempt_id),
            )
        )
