"""`zapsync sandbox serve`: a simulated WhatsApp gateway speaking one gateway's HTTP dialect."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from zapsync.cli.runner import console

# zapsync.sandbox.dialects.DIALECTS, spelled out: importing it loads FastAPI for every
# `zapsync --help` (tests/test_cli_startup.py checks the two agree).
DIALECTS = ("evolution", "waha", "megaapi", "chatwoot")

app = typer.Typer(help="The simulated WhatsApp gateway, for demos, tests and benchmarks.")


@app.command("serve")
def serve(
    dialect: Annotated[str, typer.Option(help=f"One of: {', '.join(DIALECTS)}.")] = "evolution",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8081,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve a sandbox gateway. Its control API (pair by QR, drop the link, add chats and
    messages, inject latency, timeouts, 5xx and malformed bodies) is under /_sandbox; see
    /docs on the same port."""
    import uvicorn

    from zapsync.logs import configure_logging
    from zapsync.sandbox.server import build_sandbox_app

    if dialect not in DIALECTS:
        raise typer.BadParameter(f"choose one of {', '.join(DIALECTS)}", param_hint="--dialect")
    configure_logging("console", "WARNING")
    url = f"http://{host}:{port}"
    field, secret, instance_field = _credential(dialect)
    config = {"base_url": url, field: secret, instance_field: "<any name>"}
    console.print(
        f"sandbox gateway ({dialect}) on {url}  control: /_sandbox", highlight=False, soft_wrap=True
    )
    console.print(f"API key: {secret}", highlight=False, soft_wrap=True)
    # what POST /api/v1/sessions takes as `config` to reach this gateway
    console.print(f"session config: {json.dumps(config)}", highlight=False, soft_wrap=True)
    uvicorn.run(build_sandbox_app(dialect), host=host, port=port, log_level="warning")


def _credential(dialect: str) -> tuple[str, str, str]:
    """The session config's credential field, the key this dialect accepts, and the field
    naming the instance; the keys are read from the dialects so they are stated once."""
    if dialect == "waha":
        from zapsync.sandbox.dialects.waha.http import SANDBOX_API_KEY

        return "api_key", SANDBOX_API_KEY, "session"
    if dialect == "chatwoot":
        from zapsync.sandbox.dialects.chatwoot.state import SANDBOX_TOKEN as CHATWOOT_TOKEN

        return "api_key", CHATWOOT_TOKEN, "account_id"
    if dialect == "megaapi":
        from zapsync.sandbox.dialects.megaapi.dialect import SANDBOX_TOKEN

        return "token", SANDBOX_TOKEN, "instance_key"
    from zapsync.sandbox.dialects.evolution.dialect import GLOBAL_API_KEY

    return "api_key", GLOBAL_API_KEY, "instance"
