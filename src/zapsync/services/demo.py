"""The sandbox demo `make run` loads: an organization, an admin with a generated password and
a token, both kept in the data dir so every restart reuses them, and a sandbox session whose
phone has a few customers' chats."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from zapsync.runtime.context import AppContext
from zapsync.sandbox.demo_phone import fill_demo_phone
from zapsync.security.tokens import hash_token, verify_password
from zapsync.services import accounts, logins
from zapsync.services.accounts import Principal
from zapsync.services.sessions.gateway import sandbox_instance_name
from zapsync.services.sessions.lifecycle import WebhookUrl, create_session
from zapsync.store.accounts import active_token_with_hash, organization_named, user_with_email
from zapsync.store.sessions import live_session_id

DEMO_ORG = "Demo"
DEMO_EMAIL = "demo@zapsync.local"
TOKEN_FILE = "demo-token.txt"
PASSWORD_FILE = "demo-password.txt"


@dataclass(frozen=True)
class Demo:
    organization_id: int
    user_id: int
    token: str
    token_file: str
    session_id: int
    email: str
    password: str  # empty when the user set their own
    password_file: str


async def load_demo(ctx: AppContext, webhook_url: WebhookUrl) -> Demo:
    """Create what is missing of the demo; safe to run at every start."""
    token_path = ctx.settings.data_dir / TOKEN_FILE
    async with ctx.db.session() as db:
        org = await organization_named(db, DEMO_ORG)
        if org is None:
            org = await accounts.create_organization(db, DEMO_ORG)
        user = await user_with_email(db, DEMO_EMAIL)
        if user is None:
            user = await accounts.create_user(db, org, DEMO_EMAIL, "admin", name="Demo admin")
        plain = token_path.read_text().strip() if token_path.exists() else ""
        known = plain and await active_token_with_hash(db, hash_token(plain))
        if not known:
            _, plain = await accounts.create_token(db, user, name="demo")
            write_secret(token_path, plain)
        password_path = ctx.settings.data_dir / PASSWORD_FILE
        password = password_path.read_text().strip() if password_path.exists() else ""
        if not password or user.password_hash is None:
            password = password or secrets.token_urlsafe(12)
            await logins.set_password(db, user, password)
            write_secret(password_path, password)
        elif not verify_password(password, user.password_hash):
            # Changed with `zapsync admin set-password`: the user's own now, kept, not shown.
            password = ""
        await db.commit()
        principal = Principal.operator(org.id, user_id=user.id)
        session_id = await live_session_id(db, org.id, "sandbox")
        if session_id is None:
            created = await create_session(
                ctx,
                db,
                principal,
                name="Demo WhatsApp",
                provider="sandbox",
                config={},
                webhook_url=webhook_url,
            )
            session_id = created.session.id
    phone = ctx.world.get(sandbox_instance_name(session_id))
    if phone is not None:
        fill_demo_phone(ctx.world, phone)
    return Demo(
        org.id,
        user.id,
        plain,
        str(token_path),
        session_id,
        email=DEMO_EMAIL,
        password=password,
        password_file=str(password_path),
    )


def write_secret(path: Path, value: str) -> None:
    """Write `value` readable by this user only (mode 600 from the start, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(value + "\n")
