"""The WAHA dialect's routes, one module per resource of WAHA's API."""
