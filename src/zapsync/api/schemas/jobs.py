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


class QueuedJobs(BaseModel):
    """How many jobs of one task are in one state."""

    task: str
    status: str  # todo | doing | succeeded | failed | cancelled | aborted
    count: int


class JobQueuePublic(BaseModel):
    """Who runs the jobs, and (scaled out) what waits, runs and failed in Procrastinate's
    queue, for every organization: counts by task only, never a job's arguments."""

    mode: str  # embedded | procrastinate
    jobs: list[QueuedJobs]
