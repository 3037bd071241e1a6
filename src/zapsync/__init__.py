"""zapsync: keeps WhatsApp connections, conversations and contacts true in one database."""

__version__ = "0.1.0"
