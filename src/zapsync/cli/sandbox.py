"""`zapsync sandbox serve`: a simulated WhatsApp gateway speaking one gateway's HTTP dialect."""

from __future__ import annotations

from typing import Annotated

import typer

from zapsync.cli.runner import console
from zapsync.sandbox.dialects import DIALECTS

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
    console.print(f"sandbox gateway ({dialect}) on http://{host}:{port}  control: /_sandbox")
    uvicorn.run(build_sandbox_app(dialect), host=host, port=port, log_level="warning")
