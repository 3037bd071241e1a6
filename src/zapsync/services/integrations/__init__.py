"""Integrations with helpdesks and CRMs (Chatwoot first): connections, pulls, pushes, the
bridge of WhatsApp conversations, and their webhooks. What any connector shares (external refs,
fingerprints, runs) is kept apart from what is Chatwoot's."""
