// Tarefas: the scheduled jobs with their last and next run; admins may run one now.
import { useCallback, useEffect, useState } from "preact/hooks";
import { errorText, get, post } from "../api";
import { Empty, Failure, Loading } from "../components/states";
import { formatStamp } from "../format";
import { useEvent, useResync } from "../realtime";
import { useIsAdmin } from "../session";
import { t } from "../strings";
import type { Job, RunSummary } from "../types";

function counts(run: RunSummary): string {
  const c = run.counts;
  return `${t.integrations.created} ${c.created} · ${t.integrations.updated} ${c.updated} · ${t.integrations.skipped} ${c.skipped} · ${t.integrations.errors} ${c.errors}`;
}

export function JobsScreen() {
  const admin = useIsAdmin();
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [running, setRunning] = useState<string | null>(null);
  const [outcome, setOutcome] = useState<{ name: string; text: string; failed: boolean } | null>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      setJobs(await get<Job[]>("/api/v1/jobs"));
    } catch (err) {
      setError(errorText(err));
    }
  }, []);
  useEffect(() => {
    load();
  }, []);
  useResync(load);
  useEvent("sync_run", () => load());

  const run = async (name: string) => {
    setRunning(name);
    setOutcome(null);
    try {
      await post(`/api/v1/jobs/${name}/run`);
      setOutcome({ name, text: t.jobs.done, failed: false });
      await load();
    } catch (err) {
      setOutcome({ name, text: errorText(err), failed: true });
    } finally {
      setRunning(null);
    }
  };

  if (error) return <Failure error={error} retry={load} />;
  if (!jobs) return <Loading />;
  if (jobs.length === 0) return <Empty text={t.jobs.empty} />;
  return (
    <div class="page jobs">
      <header class="page-head">
        <h1>{t.jobs.title}</h1>
      </header>
      <ul class="cards">
        {jobs.map((job) => (
          <li class="card job" key={job.name} data-job={job.name}>
            <div class="card-head">
              <h2>{job.name}</h2>
              {admin && (
                <button type="button" onClick={() => run(job.name)} disabled={running !== null}>
                  {running === job.name ? t.jobs.running : t.jobs.runNow}
                </button>
              )}
            </div>
            <p>{job.description}</p>
            <dl>
              <dt>{t.jobs.schedule}</dt>
              <dd>{job.schedule}</dd>
              <dt>{t.jobs.lastRun}</dt>
              <dd>
                {job.last_run
                  ? `${formatStamp(job.last_run.started_at)} · ${t.integrations.runStatus[job.last_run.status] ?? job.last_run.status}`
                  : t.jobs.never}
              </dd>
              <dt>{t.jobs.nextRun}</dt>
              <dd>{!job.scheduled ? t.jobs.notScheduled : job.next_run ? formatStamp(job.next_run) : t.common.none}</dd>
              {job.last_run && (
                <>
                  <dt>{t.jobs.report}</dt>
                  <dd>{counts(job.last_run)}</dd>
                </>
              )}
            </dl>
            {outcome?.name === job.name && (
              <p class={outcome.failed ? "error" : "note"} role={outcome.failed ? "alert" : "status"}>
                {outcome.text}
              </p>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
