"""The sandbox demo `make run` loads: an organization, an admin and a token kept in the data
dir so every restart reuses it, and a sandbox session whose phone has a few customers' chats."""

from __future__ import annotations

from dataclasses import dataclass

from zapsync.runtime.context import AppContext
from zapsync.sandbox.demo_phone import fill_demo_phone
from zapsync.security.tokens import hash_token
from zapsync.services import accounts
from zapsync.services.accounts import Principal
from zapsync.services.sessions.gateway import sandbox_instance_name
from zapsync.services.sessions.lifecycle import WebhookUrl, create_session
from zapsync.store.accounts import active_token_with_hash, organization_named, user_with_email
from zapsync.store.sessions import live_session_id

DEMO_ORG = "Demo"
DEMO_EMAIL = "demo@zapsync.local"
TOKEN_FILE = "demo-token.txt"


@dataclass(frozen=True)
class Demo:
    organization_id: int
    user_id: int
    token: str
    token_file: str
    session_id: int


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
            token_path.parent.mkdir(parents=True, exist_ok=True)
            token_path.write_text(plain + "\n")
            token_path.chmod(0o600)
        await db.commit()
        principal = Principal(user.id, org.id, "admin", token_id=0)
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
    return Demo(org.id, user.id, plain, str(token_path), session_id)
