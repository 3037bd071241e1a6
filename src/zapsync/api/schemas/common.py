"""Shapes several resources share."""

from __future__ import annotations

from typing import Annotated

from pydantic import WithJsonSchema

# A time a service already rendered as ISO 8601 text (run summaries).
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
