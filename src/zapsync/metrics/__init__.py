"""Prometheus metrics: counters kept in process (`instruments`), figures read from the
database when scraped (`database`), served at `/metrics` (`api/routes/metrics.py`)."""
