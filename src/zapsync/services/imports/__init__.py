"""Importing a session's chats and history from its gateway, and when to do it."""
