"""What agents do: read and update conversations and contacts, send, mark read."""
