"""Evolution API v2 (a self-hosted Baileys gateway): the adapter (`client.py`), its payload
parsers (`payloads.py`) and the 500s it answers for requests that can never succeed
(`errors.py`)."""
