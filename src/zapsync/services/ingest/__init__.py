"""What gateways report: webhook deliveries verified, parsed and applied; the one owner of
every message, chat and contact change they cause."""
