"""Work queued for later and handed to a gateway (or a connector) with retries."""
