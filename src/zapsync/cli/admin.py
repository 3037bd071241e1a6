"""`zapsync admin …`: organizations, users and API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from zapsync.cli.runner import console, err_console, run_with_database

if TYPE_CHECKING:
    from zapsync.store.db import Database

# The services are imported inside each command: `zapsync admin --help` stays cheap.

app = typer.Typer(help="Create organizations, users and API tokens.", no_args_is_help=True)


def prompt_password() -> str:
    """A new password, typed twice without echo; a short one stops the command."""
    from zapsync.services.errors import Invalid
    from zapsync.services.logins import check_password

    secret: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password(secret)
    except Invalid as exc:
        err_console.print(exc.detail, style="red")
        raise typer.Exit(1) from None
    return secret


@app.command("create-org")
def create_org(name: Annotated[str, typer.Argument(help="The organization's name.")]) -> None:
    """Create an organization (a tenant: its data is visible only to its users' tokens)."""

    async def body(database: Database) -> int:
        from zapsync.services import accounts

        async with database.session() as db:
            org = await accounts.create_organization(db, name)
            await db.commit()
            return org.id

    org_id = run_with_database(body)
    console.print(f"organization [bold]{name}[/bold] created (id {org_id})")


@app.command("create-user")
def create_user(
    org: Annotated[str, typer.Option("--org", help="Name of the user's organization.")],
    email: Annotated[str, typer.Option("--email", help="The user's email, used to log in.")],
    role: Annotated[str, typer.Option("--role", help="admin or agent.")] = "agent",
    password: Annotated[
        bool, typer.Option("--password", help="Prompt for a password (for the web login).")
    ] = False,
) -> None:
    """Create a user in an organization. Admins may run jobs; agents work conversations."""
    secret = prompt_password() if password else None

    async def body(database: Database) -> int:
        from zapsync.services import accounts

        async with database.session() as db:
            organization = await accounts.get_organization_by_name(db, org)
            user = await accounts.create_user(db, organization, email, role, secret)
            await db.commit()
            return user.id

    user_id = run_with_database(body)
    console.print(f"user [bold]{email}[/bold] ({role}) created in {org} (id {user_id})")


@app.command("set-password")
def set_password(
    email: Annotated[str, typer.Option("--email", help="Whose password it is.")],
) -> None:
    """Set a user's password for the web login (prompted, never an argument: it would stay
    in the shell's history)."""
    secret = prompt_password()

    async def body(database: Database) -> None:
        from zapsync.services import accounts, logins

        async with database.session() as db:
            user = await accounts.get_user_by_email(db, email)
            await logins.set_password(db, user, secret)
            await db.commit()

    run_with_database(body)
    console.print(f"password of {email} set")


@app.command("create-token")
def create_token(
    email: Annotated[str, typer.Option("--email", help="Whose token it is.")],
    name: Annotated[str | None, typer.Option("--name", help="A label, e.g. 'n8n'.")] = None,
) -> None:
    """Create an API token and print it once. Only its hash is stored: keep it safe."""

    async def body(database: Database) -> str:
        from zapsync.services import accounts

        async with database.session() as db:
            user = await accounts.get_user_by_email(db, email)
            _, plain = await accounts.create_token(db, user, name)
            await db.commit()
            return plain

    plain = run_with_database(body)
    err_console.print("token (shown once, use as `Authorization: Bearer <token>`):", style="dim")
    print(plain)


@app.command("revoke-token")
def revoke_token(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: requests with it get 401 from now on; a running server closes the
    sockets opened with it within ZAPSYNC_SOCKET_RECHECK_SECONDS."""

    async def body(database: Database) -> None:
        from zapsync.services import accounts

        async with database.session() as db:
            await accounts.revoke_token(db, token_id)
            await db.commit()

    run_with_database(body)
    console.print(f"token {token_id} revoked")


@app.command("remove-user")
def remove_user(
    email: Annotated[str, typer.Option("--email", help="The user to remove.")],
) -> None:
    """Remove a user and their tokens (their sessions stay with the organization); a running
    server closes their sockets within ZAPSYNC_SOCKET_RECHECK_SECONDS."""

    async def body(database: Database) -> None:
        from zapsync.services import accounts

        async with database.session() as db:
            user = await accounts.get_user_by_email(db, email)
            await accounts.remove_user(db, user)
            await db.commit()

    run_with_database(body)
    console.print(f"user {email} removed")
