"""The errors Evolution answers as a 500 although trying again can never help.

Evolution renders any exception thrown while preparing a message as a 500; these reasons
make such an answer a `GatewayRejected` (see `providers/permanent_errors.py`)."""

from __future__ import annotations

from zapsync.providers.permanent_errors import PermanentErrors

# Evolution API 2.3: exceptions thrown while preparing a message, rendered as a 500.
PERMANENT_ERRORS = PermanentErrors(
    reasons=("input buffer contains unsupported image format",),  # sharp: the bytes are no image
)
