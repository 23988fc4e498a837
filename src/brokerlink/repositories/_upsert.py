from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert_statement(
    session: AsyncSession,
    table: Table,
    *,
    conflict: tuple[str, ...],
    update: tuple[str, ...],
) -> Any:
    """`INSERT … ON CONFLICT (conflict) DO UPDATE SET update = excluded.update` for the session's
    dialect (both PostgreSQL and SQLite speak it, through different constructors)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg_insert = postgresql.insert(table)
        return pg_insert.on_conflict_do_update(
            index_elements=list(conflict),
            set_={name: pg_insert.excluded[name] for name in update},
        )
    if dialect == "sqlite":
        lite_insert = sqlite.insert(table)
        return lite_insert.on_conflict_do_update(
            index_elements=list(conflict),
            set_={name: lite_insert.excluded[name] for name in update},
        )
    raise NotImplementedError(f"no upsert for dialect {dialect!r}")
