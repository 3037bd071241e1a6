"""The sandbox world in MegaAPI's dialect (`/rest/...`, `Authorization: Bearer`).

MegaAPI is hosted: the provider provisions instances and hands out an account token. The
sandbox stands in for that with MegaAPI's own `POST /rest/instance/init?instance_key=K`
(the route its self-hosted ancestor and client code call), so a test or a demo creates an
instance over HTTP before zapsync attaches to it. Every other route answers 404
`{error:true, message:"instance not found"}` for a key that was never created.

Shapes follow GATEWAYS.md §3 and contracts/megaapi/. Where MegaAPI documents nothing the
sandbox keeps to what its clients read, and says so:
- `qrcode_base64` also carries the raw QR string in `code` (MegaAPI only sends the PNG).
- a `messageType:"qrcode"` webhook announces a new QR (no capture of MegaAPI's exists).
- acks, edits, deletions, contacts and chat events send no webhook: none is documented.

Routes by resource in `routes/` (instance, webhook, sendMessage), sharing one
`MegaApiDialect` (`dialect.py`); bodies in `shapes.py`, webhooks in `webhooks.py`, errors and
request bodies in `http.py`; `front_end.build` puts them together.
"""
