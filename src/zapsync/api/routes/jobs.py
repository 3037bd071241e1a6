"""`/api/v1/jobs` (admin) and `/api/v1/cron/{name}` (an outside cron with CRON_SECRET)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from zapsync.api.deps import AdminPrincipal, Ctx, CurrentPrincipal, Db, Scheduler
from zapsync.api.problems import problem_responses
from zapsync.api.routing import ApiRoute
from zapsync.api.schemas import JobPublic, JobQueuePublic, JobReport, QueuedJobs
from zapsync.jobs.definitions import JOBS, JobSpec
from zapsync.jobs.queue import queue_counts
from zapsync.jobs.scheduler import next_run_times
from zapsync.security.tokens import secrets_equal
from zapsync.services.errors import NotFound, Unauthorized
from zapsync.services.runs import last_run, run_summary

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], route_class=ApiRoute)
cron_router = APIRouter(
    prefix="/api/v1/cron",
    tags=["jobs"],
    route_class=ApiRoute,
    responses=problem_responses(401),  # the cron secret, not a token: no role
)
_cron_bearer = HTTPBearer(auto_error=False)


def job_named(name: str) -> JobSpec:
    spec = JOBS.get(name)
    if spec is None:
        raise NotFound(f"no job named {name!r}; jobs are {', '.join(JOBS)}")
    return spec


@router.get("", response_model=list[JobPublic])
async def list_jobs(
    ctx: Ctx, db: Db, principal: CurrentPrincipal, scheduler: Scheduler
) -> list[JobPublic]:
    """Each job's schedule, this organization's last run (outcome and counts) and the next
    run, in `ZAPSYNC_TIMEZONE`."""
    nexts = next_run_times(ctx, scheduler, datetime.now(UTC))
    scaled_out = ctx.settings.jobs == "procrastinate"
    jobs = []
    for name, spec in JOBS.items():
        run = await last_run(db, name, principal.organization_id)
        nxt = nexts.get(name)
        jobs.append(
            JobPublic.model_validate(
                {
                    "name": name,
                    "description": spec.description,
                    "schedule": spec.schedule,
                    # scaled out, Procrastinate's workers fire the schedules
                    "scheduled": bool(scheduler and scheduler.running) or scaled_out,
                    "last_run": run_summary(run),
                    "next_run": nxt.isoformat() if nxt else None,
                }
            )
        )
    return jobs


@router.get("/queue", response_model=JobQueuePublic)
async def job_queue(ctx: Ctx, principal: AdminPrincipal) -> JobQueuePublic:
    """Who runs the jobs; scaled out, Procrastinate's jobs by task and state."""
    counts = await queue_counts(ctx)
    return JobQueuePublic(
        mode=ctx.settings.jobs,
        jobs=[QueuedJobs(task=t, status=s, count=n) for t, s, n in counts],
    )


@router.post("/{name}/run", response_model=JobReport)
async def run_job(name: str, ctx: Ctx, principal: AdminPrincipal) -> JobReport:
    """Run a job now for this organization only and return its report."""
    spec = job_named(name)
    return JobReport.model_validate(await spec.func(ctx, principal.organization_id, "manual"))


# GET too: Vercel Cron and many hosted schedulers can only send a GET.
@cron_router.post("/{name}", response_model=JobReport)
@cron_router.get("/{name}", response_model=JobReport)
async def cron_job(
    name: str,
    ctx: Ctx,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_cron_bearer)],
) -> JobReport:
    """For an outside cron: `Authorization: Bearer <CRON_SECRET>`; runs for every organization."""
    expected = ctx.settings.cron_secret.get_secret_value() if ctx.settings.cron_secret else ""
    if not expected:
        raise Unauthorized("cron routes are disabled: set CRON_SECRET")
    if creds is None or not secrets_equal(creds.credentials, expected):
        raise Unauthorized("wrong cron secret")
    spec = job_named(name)
    return JobReport.model_validate(await spec.func(ctx, None, "cron"))
