"""The Evolution dialect's routes, one module per controller of Evolution's API, plus the
sandbox's controls of it."""
