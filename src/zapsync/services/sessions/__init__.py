"""WhatsApp sessions: lifecycle, config, the gateway adapter, stored status and its sync."""
