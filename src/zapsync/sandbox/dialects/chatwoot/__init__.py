"""The sandbox in Chatwoot's dialect: the Application API zapsync's Chatwoot connector talks to
(`/api/v1/accounts/{account_id}/...`, `api_access_token`), with Chatwoot's envelopes, page
sizes, validation, error bodies and throttling, and its signed outgoing webhooks.

Unlike the gateway dialects it renders no WhatsApp world: a helpdesk has its own state
(`state.py`). Routes are split by resource; `/_sandbox/chatwoot` is its control API. The token
is `sandbox-chatwoot-token` and the account 1, with an API inbox (1) and an e-mail inbox (2)."""
