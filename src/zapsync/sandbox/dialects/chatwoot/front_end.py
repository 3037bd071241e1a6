"""The Chatwoot dialect put together (see the package docstring)."""

from zapsync.sandbox.dialects.chatwoot import build

__all__ = ["build"]
