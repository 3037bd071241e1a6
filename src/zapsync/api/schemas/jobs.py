"""Jobs: their schedule and last run, and the report of a run asked for now."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from zapsync.api.schemas.common import Timestamp
from zapsync.api.schemas.runs import RunSummary


class JobPublic(BaseModel):
    name: str
    description: str
    schedule: str
    scheduled: bool
    last_run: RunSummary | None
    next_run: Timestamp | None


class JobReport(BaseModel):
    """What the job did; the fields are the job's own (`run_id` names its recorded run)."""

    model_config = ConfigDict(extra="allow")
