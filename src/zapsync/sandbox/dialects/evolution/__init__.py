"""The sandbox world spoken in Evolution API v2's HTTP dialect (shapes of 2.3.6).

It reproduces the traps as well as the happy path: `fetchInstances` reports the stale DB column
(`open` by default) while `connectionState` reports the live socket; `connect` answers errors
with HTTP 200; `findChats` hides chats without messages; sends fail with a 500 "Connection
Closed" on a dropped or zombie socket; logging out a closed instance is a 400.

Like the real server, a started instance keeps reconnecting (a `connecting` and a fresh QR
each round) until it is logged out or deleted; a 400 logout does not stop it. Rounds run on
`POST /_sandbox/evolution/reconnect-tick` (tests) or every N seconds after
`POST /_sandbox/evolution/reconnect {"every_seconds": N}`. `POST /_sandbox/evolution/pace
{"create_wait_seconds": S}` makes `instance/create` hold its answer S seconds, as Evolution
holds it 5 s while its first QR (and that QR's webhook) goes out.

Routes by resource in `routes/` (instance, webhook, chat, message, and the sandbox's own
controls), sharing one `EvolutionDialect` (`dialect.py`); what the server stores per instance
in `state.py`, bodies in `shapes.py`, webhooks in `webhooks.py`, errors and request bodies in
`http.py`; `front_end.build` puts them together."""
