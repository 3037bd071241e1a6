"""The inbox page at `/`: the files Vite built from `web/` (`make web`), served with cache
headers, or, when they were never built, a short page saying how to build them (the API
works either way).

Vite names its assets by their content's hash, so they may be cached for a year; `index.html`
names the current ones and is revalidated on every load, so a new build shows at once."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

BUILT = Path(__file__).resolve().parent.parent / "web_dist"
# The screens' paths (web/src/app.tsx): each answers index.html and the page routes itself.
SCREENS = ("login", "conversas", "conexoes", "integracoes", "tarefas")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

NOT_BUILT = """<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>zapsync</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>zapsync</h1>
<p>A página web não foi construída. Rode <code>make web</code> (ou <code>make run</code>)
na pasta do projeto e recarregue.</p>
<p>The web page is not built: run <code>make web</code> and reload. The API works meanwhile:
<a href="/docs">/docs</a>.</p>
</body></html>
"""


class HashedAssets(StaticFiles):
    """Vite's hashed files, cached for good (a changed file gets a new name)."""

    async def check_config(self) -> None:
        # Not built yet is a 404 per file, not an error: `make web` may run while serving.
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = IMMUTABLE
        return response


def install_web_page(app: FastAPI, built: Path = BUILT) -> None:
    """`/` and each screen's path answer the page; `/assets/…` its files."""
    index = built / "index.html"
    assets = built / "assets"

    async def page() -> Response:
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=200, headers={"Cache-Control": REVALIDATE})
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": REVALIDATE})

    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    for screen in SCREENS:
        app.add_api_route(f"/{screen}", page, methods=["GET"], include_in_schema=False)
        app.add_api_route(
            f"/{screen}/{{rest:path}}", page, methods=["GET"], include_in_schema=False
        )
    # check_dir=False: the folder may appear later (`make web` while the server runs).
    app.mount("/assets", HashedAssets(directory=assets, check_dir=False), name="web-assets")
