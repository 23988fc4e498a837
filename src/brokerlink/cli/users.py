"""`brokerlink users create|admin` and `brokerlink tokens create|list|revoke`: who may sign in,
and who sees the operator dashboard."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from brokerlink.auth import AuthService
from brokerlink.config import get_settings
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker, transaction
from brokerlink.errors import BrokerlinkError, NotFoundError
from brokerlink.models import AuthToken, User

__all__ = ["tokens_app", "users_app"]

users_app = typer.Typer(help="People who use the app.", no_args_is_help=True)
tokens_app = typer.Typer(help="Bearer API tokens for programs.", no_args_is_help=True)

T = TypeVar("T")


def _run(job: Callable[[AuthService], Awaitable[T]]) -> T:
    """Run `job` in one transaction on the configured store (migrated to head first)."""

    async def main() -> T:
        settings = get_settings()
        url = settings.database_url_resolved
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate.upgrade_async(url)
        engine = create_engine(url)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                return await job(AuthService(session))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except BrokerlinkError as error:
        Console(stderr=True).print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from error


async def _user(auth: AuthService, email: str) -> User:
    user = await auth.users.get_by_email(email.strip().lower())
    if user is None:
        raise NotFoundError(f"no user with email {email}")
    return user


@users_app.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="The user's email (their sign-in name).")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password: Annotated[
        str | None,
        typer.Option(
            help="Web sign-in password (asked for when omitted; --no-password for API-only).",
            envvar="BROKERLINK_NEW_USER_PASSWORD",
        ),
    ] = None,
    no_password: Annotated[bool, typer.Option(help="API tokens only, no web sign-in.")] = False,
) -> None:
    """Create a user (with a default portfolio)."""
    if password is None and not no_password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def job(auth: AuthService) -> User:
        return await auth.create_user(email, password=None if no_password else password, name=name)

    user = _run(job)
    Console().print(f"created user {user.id} <{user.email}>")


@users_app.command("admin")
def admin_user(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the admin role away.")] = False,
) -> None:
    """Make a user an admin (the operator dashboard at /operator), or no longer one."""

    async def job(auth: AuthService) -> User:
        user = await _user(auth, email)
        user.is_admin = not revoke
        await auth.session.flush()
        return user

    user = _run(job)
    if user.is_admin:
        Console().print(f"{user.email} is an admin: the operator dashboard is at /operator")
    else:
        Console().print(f"{user.email} is no longer an admin")


@tokens_app.command("create")
def create_token(
    email: Annotated[str, typer.Option(help="Whose token.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    days: Annotated[int | None, typer.Option(help="Expire after this many days.", min=1)] = None,
) -> None:
    """Issue a bearer API token. It is printed once and only its hash is stored."""

    async def job(auth: AuthService) -> str:
        user = await _user(auth, email)
        ttl = timedelta(days=days) if days else None
        return (await auth.issue(user.id, kind="api", name=name, ttl=ttl)).token

    token = _run(job)
    console = Console()
    console.print("Your API token (shown once; send it as 'Authorization: Bearer <token>'):")
    console.print(token, soft_wrap=True, highlight=False)


@tokens_app.command("list")
def list_tokens(email: Annotated[str, typer.Option(help="Whose tokens.")]) -> None:
    """The user's API tokens (never the tokens themselves)."""

    async def job(auth: AuthService) -> list[AuthToken]:
        user = await _user(auth, email)
        return await auth.tokens.list_for_user(user.id, kind="api")

    table = Table("id", "name", "created", "expires", "last used", "revoked")
    for row in _run(job):
        table.add_row(
            str(row.id),
            row.name or "",
            f"{row.created_at:%Y-%m-%d %H:%M}",
            f"{row.expires_at:%Y-%m-%d}" if row.expires_at else "never",
            f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never",
            f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "",
        )
    Console().print(table)


@tokens_app.command("revoke")
def revoke_token(
    email: Annotated[str, typer.Option(help="Whose token.")],
    token_id: Annotated[int, typer.Argument(help="The id `tokens list` shows.")],
) -> None:
    """Revoke one of the user's API tokens."""

    async def job(auth: AuthService) -> None:
        user = await _user(auth, email)
        rows = {r.id: r for r in await auth.tokens.list_for_user(user.id)}
        if token_id not in rows:
            raise NotFoundError(f"{email} has no token {token_id}")
        await auth.tokens.revoke(rows[token_id].token_hash, auth.clock())

    _run(job)
    Console().print(f"token {token_id} revoked")
