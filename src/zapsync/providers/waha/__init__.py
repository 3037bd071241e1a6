"""WAHA (WhatsApp HTTP API, engine NOWEB): the adapter (`client.py`) and its payload parsers
(`payloads.py`)."""
