"""What the demo's simulated phone holds before it is paired: a few customers of a small
Brazilian shop with some days of history, so that pairing shows the import at work."""

from __future__ import annotations

import time

from zapsync.sandbox.world import SimInstance, SimMessage, World

# (phone, push name, [(from_me, text), ...]) oldest first; one chat under the old 8-digit
# mobile spelling, which zapsync folds into the same person as the 9-digit one. The shop has
# not read what customers wrote after its last reply: the inbox shows those chats as unread.
_CHATS: list[tuple[str, str, list[tuple[bool, str]]]] = [
    (
        "5511987654321",
        "Maria Souza",
        [
            (False, "Oi! Vocês ainda têm o tênis azul no 38?"),
            (True, "Olá, Maria! Temos sim, quer que eu separe um par?"),
            (False, "Quero sim, passo aí amanhã"),
            (True, "Combinado, fica reservado até sábado."),
        ],
    ),
    (
        "5521998765432",
        "João Pereira",
        [
            (False, "Bom dia, qual o prazo de entrega para Niterói?"),
            (True, "Bom dia, João! Para Niterói são 2 dias úteis."),
            (False, "Perfeito, vou fechar o pedido pelo site"),
        ],
    ),
    (
        "553187651234",
        "Ana Lima",
        [
            (False, "Boa tarde, recebi o pedido com um item faltando"),
            (True, "Boa tarde, Ana. Sinto muito! Pode me mandar o número do pedido?"),
            (False, "É o 48213"),
        ],
    ),
    (
        "5541991112222",
        "Carlos Mendes",
        [
            (True, "Carlos, seu orçamento ficou pronto, posso enviar por aqui?"),
            (False, "Pode mandar, obrigado"),
        ],
    ),
    (
        "5585988887777",
        "Fernanda Rocha",
        [(False, "Vocês abrem no feriado?")],
    ),
]


def fill_demo_phone(world: World, inst: SimInstance) -> None:
    """Give the phone its chats, once (a restart builds a new phone: it gets them again)."""
    if inst.chats:
        return
    now = int(time.time())
    for c, (phone, name, lines) in enumerate(_CHATS):
        jid = f"{phone}@s.whatsapp.net"
        chat = world.add_chat(inst, jid, name=name)
        start = now - (len(_CHATS) - c) * 86_400  # a day apart, the last one yesterday
        answered = max((n for n, (from_me, _) in enumerate(lines) if from_me), default=-1)
        for n, (from_me, text) in enumerate(lines):
            chat.messages.append(
                SimMessage(
                    id=f"DEMO{c:02d}{n:03d}",
                    chat_jid=jid,
                    from_me=from_me,
                    timestamp=start + n * 600,
                    body=text,
                    ack=3 if from_me or n < answered else 2,  # 2: delivered, not read
                    push_name=None if from_me else name,
                )
            )
