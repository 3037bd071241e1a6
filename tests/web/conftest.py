"""The browser tests' world: a real zapsync serving the demo (its sandbox phone, its sandbox
Chatwoot) and the built page, driven by Debian's Chromium through Playwright.

Skipped, with the reason, when Chromium is not installed (`make test` installs it) or the
page is not built (`make web`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import free_port, serving_zapsync
from zapsync.api.web_page import BUILT
from zapsync.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTHS = {"desktop": (1280, 800), "phone": (375, 740)}
# Playwright's own waits, long enough for a loaded 2-core machine (they return at once when met).
WAIT_MS = 20_000

if not CHROMIUM.exists():
    pytest.skip(
        f"the browser tests need Debian's Chromium at {CHROMIUM} (make test installs it: "
        "apt-get install -y chromium)",
        allow_module_level=True,
    )
if not (BUILT / "index.html").is_file():
    pytest.skip("the web page is not built: run `make web`", allow_module_level=True)

from playwright.async_api import (  # noqa: E402  (only once Chromium is known to be there)
    Browser,
    ConsoleMessage,
    Page,
    async_playwright,
    expect,
)

expect.set_options(timeout=WAIT_MS)


@dataclass
class Demo:
    url: str
    token: str
    password: str
    session_id: int
    chatwoot_url: str  # the demo's own sandbox Chatwoot, with its control API
    email: str = "demo@zapsync.local"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            resp = await http.request(method, path, headers=self.headers, **kwargs)
        assert resp.is_success, f"{method} {path} -> {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None


@pytest.fixture
def demo_server(settings: Settings) -> Iterator[Demo]:
    chatwoot_port = free_port()
    demo_settings = settings.model_copy(update={"demo": True, "demo_chatwoot_port": chatwoot_port})
    with serving_zapsync(demo_settings) as url:
        data = settings.data_dir
        token = (data / "demo-token.txt").read_text().strip()
        password = (data / "demo-password.txt").read_text().strip()
        sessions = httpx.get(
            f"{url}/api/v1/sessions", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()
        yield Demo(url, token, password, sessions[0]["id"], f"http://127.0.0.1:{chatwoot_port}")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            # As root (CI containers) Chromium refuses its sandbox; /dev/shm is small there.
            args=["--no-sandbox", "--disable-dev-shm-usage"] if os.geteuid() == 0 else [],
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Console:
    """What the page wrote to the console as errors, and the exceptions it threw."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"{message.text} at {message.location}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))


@pytest.fixture
async def page(browser: Browser, demo_server: Demo) -> AsyncIterator[tuple[Page, Console]]:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800},
        locale="pt-BR",
        timezone_id="America/Sao_Paulo",
        base_url=demo_server.url,
    )
    opened = await context.new_page()
    console = Console()
    console.watch(opened)
    try:
        yield opened, console
    finally:
        await context.close()
    assert console.errors == [], "the browser console showed errors"


async def log_in(page: Page, demo: Demo) -> None:
    await page.goto("/")
    await page.get_by_label("E-mail").fill(demo.email)
    await page.get_by_label("Senha").fill(demo.password)
    await page.get_by_role("button", name="Entrar").click()
    await expect(page.get_by_role("navigation", name="principal")).to_be_visible()


async def screenshots(page: Page, name: str) -> None:
    """The screen as it is now, at a desktop's width and a phone's."""
    ARTIFACTS.mkdir(exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=ARTIFACTS / f"{name}-{label}-{width}px.png", full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 800})
