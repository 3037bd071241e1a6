"""The inbox page with a big account: 5,000 conversations and a 10,000-message thread, against
the same page with 10 conversations, in the same run (issue 14).

Each account is bulk-loaded into a fresh SQLite file (bench/big_account.py's loader: the real
schema, names with accents, one long thread), served by `zapsync serve` in its own process,
and opened in Debian's Chromium through Playwright, logged in once. Measured, five times each,
median: the inbox's first paint (a full load of `/conversas` until the first conversation of
the list is on screen) and opening the longest thread (a full load of `/conversas/{id}` until
its newest message is on screen).

Targets: inbox first paint < 1.0 s and the big thread < 0.5 s on this machine; each figure is
also given as a ratio to the small account's.

Run: `make bench`, or `.venv/bin/python -m bench.inbox_page` (needs `make web` and
/usr/bin/chromium)."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import update

from bench._common import free_port, ratio_line, zapsync_process
from bench.big_account import SECRET_KEY, Dataset, Size, prepare, sqlite_dataset
from zapsync.api.web_page import BUILT
from zapsync.security.tokens import hash_password
from zapsync.store.db import make_sync_engine
from zapsync.store.models import User

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-password"
BIG = Size(messages=20_000, conversations=5_000, thread=10_000, sessions=2)
SMALL = Size(messages=200, conversations=10, thread=100, sessions=1)
TIMES = 5


def account(folder: Path, size: Size) -> Dataset:
    data = prepare(sqlite_dataset(folder, size, rebuild=True), size)
    engine = make_sync_engine(data.url)
    with engine.begin() as conn:
        conn.execute(
            update(User)
            .where(User.id == data.user_id)
            .values(password_hash=hash_password(PASSWORD))
        )
    engine.dispose()
    return data


async def measure(url: str, data: Dataset) -> tuple[float, float]:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        args = ["--no-sandbox", "--disable-dev-shm-usage"] if os.geteuid() == 0 else []
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = await browser.new_page(base_url=url, viewport={"width": 1280, "height": 800})
        await page.goto("/")
        await page.get_by_label("E-mail").fill(f"big-account-{data.size.messages}@zapsync.local")
        await page.get_by_label("Senha").fill(PASSWORD)
        await page.get_by_role("button", name="Entrar").click()
        first_row = page.get_by_test_id("conversation-list").locator("li").first
        await expect(first_row).to_be_visible(timeout=60_000)
        inbox, thread = [], []
        for _ in range(TIMES):
            started = time.perf_counter()
            await page.goto("/conversas")
            await expect(first_row).to_be_visible(timeout=60_000)
            inbox.append(time.perf_counter() - started)
            started = time.perf_counter()
            await page.goto(f"/conversas/{data.thread}")
            newest = page.get_by_test_id("thread").locator(".bubble").last
            await expect(newest).to_be_visible(timeout=60_000)
            thread.append(time.perf_counter() - started)
        await browser.close()
    return statistics.median(inbox), statistics.median(thread)


def served(data: Dataset, folder: Path) -> tuple[float, float]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": data.url,
        "ZAPSYNC_SECRET_KEY": SECRET_KEY,
        "ZAPSYNC_SCHEDULER": "false",
        "ZAPSYNC_DATA_DIR": str(folder / f"data-{data.size.messages}"),
        "ZAPSYNC_LOG_LEVEL": "WARNING",
    }
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    with zapsync_process(args, port, "/health", env=env) as url:
        return asyncio.run(measure(url, data))


def main() -> None:
    if not (BUILT / "index.html").is_file():
        raise SystemExit("the page is not built: run `make web` first")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = served(account(folder, SMALL), folder)
        big = served(account(folder, BIG), folder)
    print(f"inbox page, {BIG.conversations:,} conversations and a {BIG.thread:,}-message thread")
    print(f"  against {SMALL.conversations} conversations, median of {TIMES} full page loads")
    print(ratio_line("inbox first paint, small (s)", small[0], small[0], "s", "-"))
    print(ratio_line("inbox first paint, big (s)", big[0], small[0], "s", "< 1.0 s"))
    print(ratio_line("open the longest thread, small (s)", small[1], small[1], "s", "-"))
    print(ratio_line("open the longest thread, big (s)", big[1], small[1], "s", "< 0.5 s"))


if __name__ == "__main__":
    main()
