"""Connectors to helpdesks and CRMs (Chatwoot first). Each connector's own folder holds its
client, paginators and mapping; what any connector shares (content fingerprints) sits here."""
