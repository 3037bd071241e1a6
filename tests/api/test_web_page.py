"""`/` serves the inbox page Vite built, cached as a browser should (assets for good, the page
revalidated), and says how to build it when it was never built, the API working either way."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from zapsync.api.web_page import install_web_page


def built_page(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text('<!doctype html><script src="/assets/app-1a2b.js"></script>')
    (root / "assets" / "app-1a2b.js").write_text("console.log('oi')")
    return root


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


async def test_the_page_and_each_screen_answer_index_html_revalidated(tmp_path: Path) -> None:
    app = FastAPI()
    install_web_page(app, built_page(tmp_path / "dist"))
    for path in ("/", "/login", "/conversas", "/conversas/12", "/conexoes", "/tarefas"):
        resp = await get(app, path)
        assert resp.status_code == 200, path
        assert "/assets/app-1a2b.js" in resp.text
        assert resp.headers["cache-control"] == "no-cache"
    asset = await get(app, "/assets/app-1a2b.js")
    assert asset.status_code == 200 and asset.text == "console.log('oi')"
    assert "immutable" in asset.headers["cache-control"]
    assert (await get(app, "/assets/gone-0000.js")).status_code == 404
    assert (await get(app, "/elsewhere")).status_code == 404


async def test_an_unbuilt_page_says_how_to_build_it(tmp_path: Path) -> None:
    app = FastAPI()
    install_web_page(app, tmp_path / "never-built")
    resp = await get(app, "/conversas")
    assert resp.status_code == 200
    assert "make web" in resp.text
    assert (await get(app, "/assets/app.js")).status_code == 404


async def test_the_api_works_beside_the_page(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json()["status"] == "ok"
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (await client.get("/api/v1/me")).status_code == 401
