"""The sandbox world in WAHA's dialect (`/api/...`, `X-Api-Key`), engine NOWEB.

Shapes follow GATEWAYS.md §2, contracts/waha/ and the real 2024.10.8 captures: error bodies,
201 on POST, `engine:{}` while stopped, 404 "We didn't find a session" for a session that is
not running and 422 "Session status is not as expected" for one in the wrong status. It
behaves like WAHA Plus (any session name) with the newer signed webhooks (`X-Webhook-Hmac`,
HMAC-SHA512 of the exact bytes sent). Subscribing to both `message` and `message.any`
doubles incoming messages, as it does on a real WAHA (issue 1384).

Routes by resource in `routes/` (sessions, auth, chats, sending), sharing one `WahaDialect`
(`dialect.py`); sessions' WAHA-only state in `state.py`, bodies in `shapes.py`, signed
webhooks in `webhooks.py`, errors and the API key check in `http.py`; `front_end.build` puts
them together.
"""
