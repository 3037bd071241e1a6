"""The MegaAPI dialect's routes, one module per resource of MegaAPI's API."""
