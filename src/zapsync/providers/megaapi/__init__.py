"""MegaAPI (a hosted Baileys gateway): the adapter (`client.py`) and its payload parsers
(`payloads.py`)."""
