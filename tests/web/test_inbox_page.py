"""The inbox page in a real browser against a real zapsync with the demo: what an agent sees
and does, with every change arriving live (no reloads), and no errors in the console."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, expect

from tests.support.inbox import eventually
from tests.web.conftest import Console, Demo, log_in, screenshots

FERNANDA = "5585988887777"
MARIA = "5511987654321"


async def paired_demo(demo: Demo) -> None:
    """Scan the demo phone's QR and wait for the import of its five chats."""
    await demo.api("POST", f"/api/v1/sandbox/sessions/{demo.session_id}/scan")

    async def listed() -> list[object]:
        return list((await demo.api("GET", "/api/v1/conversations"))["items"])

    await eventually(listed, lambda items: len(items) == 5)


async def test_an_agent_reads_answers_and_hears_customers_live(
    page: tuple[Page, Console], demo_server: Demo
) -> None:
    tab, _ = page
    await tab.goto("/")
    await expect(tab.get_by_role("heading", name="Entrar no zapsync")).to_be_visible()
    await screenshots(tab, "login")
    await paired_demo(demo_server)
    await log_in(tab, demo_server)

    rows = tab.locator(".conversation")
    await expect(rows).to_have_count(5)
    await expect(rows.first).to_contain_text("Fernanda Rocha")
    await expect(rows.first).to_contain_text("Vocês abrem no feriado?")
    await expect(rows.first.locator(".badge")).to_have_text("1")
    await screenshots(tab, "conversas")

    # Importing again finds the five conversations already there: nothing new, none doubled.
    await tab.get_by_role("button", name="Sincronizar conversas").click()
    await expect(tab.get_by_test_id("sync-result")).to_contain_text("Sincronizado: 0 novas")
    await expect(rows).to_have_count(5)

    # Opening it shows the thread and reads it: the badge goes.
    await rows.first.click()
    thread = tab.get_by_test_id("thread")
    await expect(thread.get_by_role("heading", name="Fernanda Rocha")).to_be_visible()
    await expect(thread.locator(".bubble.in").last).to_contain_text("Vocês abrem no feriado?")
    await expect(thread.get_by_role("separator").first).to_be_visible()
    await expect(rows.first.locator(".badge")).to_have_count(0)

    # The customer writes again: the bubble and the preview appear without a reload.
    await demo_server.api(
        "POST",
        f"/api/v1/sandbox/sessions/{demo_server.session_id}/inbound",
        json={"from_phone": FERNANDA, "body": "Alguém aí?"},
    )
    await expect(thread.locator(".bubble.in").last).to_contain_text("Alguém aí?")
    await expect(rows.first).to_contain_text("Alguém aí?")

    # Another customer writes: her conversation moves to the top with an unread badge.
    # (Before the reply below: the sandbox stamps whole seconds, a reply in the same second
    # would rightly stay above her.)
    await demo_server.api(
        "POST",
        f"/api/v1/sandbox/sessions/{demo_server.session_id}/inbound",
        json={"from_phone": MARIA, "body": "Meu pedido chegou?"},
    )
    await expect(rows.first).to_contain_text("Maria Souza")
    await expect(rows.first).to_contain_text("Meu pedido chegou?")
    await expect(rows.first.locator(".badge")).to_have_text("1")

    # Enter sends; the bubble's tick moves from pending to sent as the gateway takes it.
    box = thread.get_by_label("Escreva uma mensagem")
    await box.fill("Abrimos sim, das 9h às 13h.")
    await box.press("Enter")
    sent = thread.locator(".bubble.out", has_text="Abrimos sim, das 9h às 13h.")
    await expect(sent).to_have_count(1)
    await expect(sent.locator(".ack")).to_have_attribute("data-ack", "sent")
    await expect(sent.locator(".ack")).to_have_text("✓")  # one tick: sent
    await expect(box).to_have_value("")

    # The reply moves Fernanda back to the top, read while open.
    await expect(rows.first).to_contain_text("Fernanda Rocha")
    await expect(rows.first).to_contain_text("Abrimos sim, das 9h às 13h.")
    await expect(rows.first.locator(".badge")).to_have_count(0)
    await expect(rows.nth(1)).to_contain_text("Maria Souza")
    await screenshots(tab, "conversa-aberta")

    # Resolving it shows at once; reopening brings it back.
    await thread.get_by_role("button", name="Resolver").click()
    await expect(thread.locator(".thread-head .status")).to_have_text("Resolvida")
    await thread.get_by_role("button", name="Reabrir").click()
    await expect(thread.locator(".thread-head .status")).to_have_text("Aberta")

    # On a phone the list and the thread take turns.
    await tab.set_viewport_size({"width": 375, "height": 740})
    await expect(tab.locator(".list-pane")).to_be_hidden()
    await thread.get_by_role("link", name="Voltar").click()
    await expect(tab.locator(".list-pane")).to_be_visible()
    await expect(tab).to_have_url(re.compile(r"/conversas$"))


async def test_a_new_sandbox_connection_pairs_by_qr_and_status_sync_finds_a_silent_drop(
    page: tuple[Page, Console], demo_server: Demo
) -> None:
    tab, _ = page
    await paired_demo(demo_server)
    await log_in(tab, demo_server)
    await tab.get_by_role("link", name="Conexões").click()
    demo_card = tab.locator(".session", has_text="Demo WhatsApp")
    await expect(demo_card.locator(".badge")).to_have_text("conectado")

    await tab.get_by_role("button", name="Nova conexão").click()
    form = tab.get_by_role("form", name="Nova conexão")
    await form.get_by_label("Nome").fill("Loja Centro")
    await form.get_by_label("Gateway").select_option("sandbox")
    await form.get_by_role("button", name="Criar conexão").click()
    card = tab.locator(".session", has_text="Loja Centro")
    await expect(card.get_by_role("img", name="QR code")).to_be_visible()
    await expect(card.locator(".badge")).to_have_text("aguardando QR")
    await screenshots(tab, "conexoes-qr")

    session_id = await card.get_attribute("data-session-id")
    await demo_server.api(
        "POST", f"/api/v1/sandbox/sessions/{session_id}/scan", json={"phone": "5511911112222"}
    )
    await expect(card.locator(".badge")).to_have_text("conectado")
    await expect(card.get_by_role("img", name="QR code")).to_have_count(0)
    await expect(card.get_by_text("conectado", exact=True).last).to_be_visible()

    # Its history tells how it got there, newest first.
    await card.get_by_text("Histórico").click()
    history = card.get_by_test_id("status-history").locator("li")
    await expect(history.first).to_contain_text("aguardando QR → conectado")
    await expect(history.first).to_contain_text("aviso do gateway")

    # The demo phone loses WhatsApp without a word; the status sync finds and reports it.
    await demo_server.api("POST", f"/api/v1/sandbox/sessions/{demo_server.session_id}/drop")
    await tab.get_by_role("button", name="Sincronizar status").click()
    report = tab.get_by_test_id("status-sync-report")
    await expect(report).to_contain_text(re.compile(r"Demo WhatsApp: conectado → \w+"))
    await screenshots(tab, "conexoes")


async def test_chatwoot_contacts_pull_shows_its_counts_and_jobs_are_listed(
    page: tuple[Page, Console], demo_server: Demo
) -> None:
    tab, _ = page
    # Three people the team added in Chatwoot, not yet in zapsync.
    async with httpx.AsyncClient(base_url=demo_server.chatwoot_url) as chatwoot:
        seeded = await chatwoot.post("/_sandbox/chatwoot/contacts/seed", json={"count": 3})
        assert seeded.is_success, seeded.text
    await log_in(tab, demo_server)
    await tab.get_by_role("link", name="Integrações").click()
    card = tab.locator(".integration")
    await expect(card).to_have_count(1)
    await expect(card.get_by_label(re.compile("URL do webhook"))).to_have_value(
        re.compile(r"^http://127\.0\.0\.1:\d+/api/v1/")
    )
    await card.get_by_role("button", name="Puxar contatos").click()
    result = card.get_by_test_id("pull-result")
    await expect(result).to_contain_text("Criados 3 · Atualizados 0 · Ignorados 0 · Erros 0")
    runs = card.get_by_test_id("runs")
    await expect(runs.locator("tbody tr").first).to_contain_text("concluída")

    # The other way: zapsync's contacts (the three just pulled among them) go to Chatwoot.
    await card.get_by_role("button", name="Enviar contatos").click()
    await expect(result).to_contain_text(
        re.compile(
            r"Enviar contatos — Resultado: Criados \d+ · Atualizados \d+ · Ignorados \d+ · Erros 0"
        )
    )
    await expect(runs.locator("tbody tr")).to_have_count(2)
    await screenshots(tab, "integracoes")

    await tab.get_by_role("link", name="Tarefas").click()
    job = tab.locator(".job", has_text="status-sync")
    await expect(job).to_be_visible()
    await job.get_by_role("button", name="Executar agora").click()
    await expect(job.get_by_role("status")).to_have_text("Concluída.")
    await expect(job).not_to_contain_text("nunca")
    await screenshots(tab, "tarefas")
