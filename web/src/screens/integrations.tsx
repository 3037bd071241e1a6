// Integrações: the Chatwoot connection (its test's answer, the webhook URL to copy), a pull
// and a push per entity with live progress, and the runs' history.
import { useCallback, useEffect, useState } from "preact/hooks";
import { errorText, get, post, query } from "../api";
import { Empty, Failure, Loading } from "../components/states";
import { formatStamp } from "../format";
import { useEvent, useResync } from "../realtime";
import { useIsAdmin } from "../session";
import { t } from "../strings";
import type { Integration, RunSummary, Session, SyncResult, SyncRun } from "../types";

// Every run `POST /api/v1/sync/run` knows of; one zapsync does not run yet answers why.
const ENTITIES = ["contacts", "conversations", "messages"] as const;
const DIRECTIONS = ["pull", "push"] as const;
type Entity = (typeof ENTITIES)[number];
type Direction = (typeof DIRECTIONS)[number];

// The route's answer, in the seed's camelCase.
interface SeedRun {
  runId: number;
  status: string;
  synced: number;
  created: number;
  updated: number;
  skipped: number;
  errors: number;
  errorMessages: string[];
}

export function IntegrationsScreen() {
  const admin = useIsAdmin();
  const [integrations, setIntegrations] = useState<Integration[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      setIntegrations(await get<Integration[]>("/api/v1/integrations"));
    } catch (err) {
      setError(errorText(err));
    }
  }, []);
  useEffect(() => {
    load();
  }, []);
  useResync(load);

  if (error) return <Failure error={error} retry={load} />;
  if (!integrations) return <Loading />;
  return (
    <div class="page integrations">
      <header class="page-head">
        <h1>{t.integrations.title}</h1>
      </header>
      {integrations.length === 0 && <Empty text={t.integrations.none} />}
      {integrations.map((i) => (
        <IntegrationCard key={i.id} integration={i} />
      ))}
      {admin && integrations.length === 0 && <ChatwootForm onCreated={load} />}
    </div>
  );
}

function IntegrationCard({ integration: i }: { integration: Integration }) {
  const admin = useIsAdmin();
  const [runs, setRuns] = useState<SyncRun[] | null>(null);
  const [busy, setBusy] = useState<string | null>(null); // `${entity}:${direction}` running
  const [progress, setProgress] = useState<number | null>(null);
  const [result, setResult] = useState<{ label: string; run: SyncResult } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  const loadRuns = useCallback(async () => {
    const answer = await get<{ data: SyncRun[] }>(`/api/v1/sync/runs${query({ integration_id: i.id, limit: 10 })}`);
    setRuns(answer.data);
  }, [i.id]);
  useEffect(() => {
    loadRuns().catch((err) => setError(errorText(err)));
  }, [i.id]);
  useResync(() => loadRuns().catch(() => {}), [i.id]);

  // Each batch of a pull commits a `sync_run` event: the count grows while it runs.
  useEvent(
    "sync_run",
    (run: RunSummary) => {
      if (!run.kind.startsWith("chatwoot")) return;
      if (run.status === "running") setProgress(run.counts.synced);
      loadRuns().catch(() => {});
    },
    [i.id],
  );

  const run = async (entity: Entity, direction: Direction) => {
    setBusy(`${entity}:${direction}`);
    setError(null);
    setResult(null);
    setProgress(0);
    try {
      const answer = await post<{ data: SeedRun }>("/api/v1/sync/run", {
        provider: "chatwoot",
        entity_type: entity,
        direction,
        integration_id: i.id,
      });
      const d = answer.data;
      setResult({
        label: t.integrations.runLabel[`${entity}:${direction}`] ?? `${entity} ${direction}`,
        run: { ...d, run_id: d.runId, error_messages: d.errorMessages },
      });
      await loadRuns();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(null);
      setProgress(null);
    }
  };

  const copy = async () => {
    await navigator.clipboard?.writeText(i.webhook_url).catch(() => {});
    setCopied(true);
  };

  return (
    <section class="card integration" data-integration-id={i.id}>
      <div class="card-head">
        <h2>Chatwoot · {i.config.api_url}</h2>
        <span class={`badge status-${i.status}`}>{t.sessionStatus[i.status] ?? i.status}</span>
      </div>
      <dl>
        <dt>{t.integrations.accountId}</dt>
        <dd>{i.config.account_id}</dd>
        <dt>{t.integrations.inbox}</dt>
        <dd>{i.config.inbox_id ?? t.common.none}</dd>
        <dt>{t.integrations.sessions}</dt>
        <dd>{i.config.session_ids.join(", ") || t.common.none}</dd>
      </dl>
      {i.last_error && (
        <p class="error">
          {t.integrations.lastError}: {i.last_error}
        </p>
      )}
      <label class="webhook">
        {t.integrations.webhook}
        <span class="row">
          <input readOnly value={i.webhook_url} onFocus={(e) => e.currentTarget.select()} />
          <button type="button" onClick={copy}>
            {copied ? t.common.copied : t.common.copy}
          </button>
        </span>
      </label>
      {admin && (
        <div class="actions">
          {ENTITIES.flatMap((entity) =>
            DIRECTIONS.map((direction) => {
              const key = `${entity}:${direction}`;
              return (
                <button
                  type="button"
                  class={key === "contacts:pull" ? "primary" : undefined}
                  key={key}
                  onClick={() => run(entity, direction)}
                  disabled={busy !== null}
                >
                  {busy === key ? t.integrations.running : t.integrations.runLabel[key]}
                </button>
              );
            }),
          )}
          {busy && progress !== null && (
            <span class="progress" role="status">
              {t.integrations.progress(progress)}
            </span>
          )}
        </div>
      )}
      {result && (
        <p class="note" role="status" data-testid="pull-result">
          {result.label} — {t.integrations.result}: {t.integrations.created} {result.run.created} ·{" "}
          {t.integrations.updated} {result.run.updated} · {t.integrations.skipped} {result.run.skipped} ·{" "}
          {t.integrations.errors} {result.run.errors}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <h3>{t.integrations.runs}</h3>
      {runs === null ? (
        <Loading />
      ) : runs.length === 0 ? (
        <Empty text={t.integrations.noRuns} />
      ) : (
        <div class="table-wrap">
          <table data-testid="runs">
            <thead>
              <tr>
                <th>{t.integrations.started}</th>
                <th>{t.integrations.kind}</th>
                <th>{t.integrations.status}</th>
                <th>{t.integrations.created}</th>
                <th>{t.integrations.updated}</th>
                <th>{t.integrations.skipped}</th>
                <th>{t.integrations.errors}</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.id}>
                  <td>{formatStamp(r.started_at)}</td>
                  <td>{r.kind}</td>
                  <td>{t.integrations.runStatus[r.status] ?? r.status}</td>
                  <td>{r.created}</td>
                  <td>{r.updated}</td>
                  <td>{r.skipped}</td>
                  <td title={r.error_messages.join("\n")}>
                    {r.errors}
                    {r.error_messages.length > 0 && <span class="errors-list">{r.error_messages.join("; ")}</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ChatwootForm({ onCreated }: { onCreated: () => void }) {
  const [apiUrl, setApiUrl] = useState("");
  const [accountId, setAccountId] = useState("");
  const [apiKey, setApiKey] = useState("");
  const [inbox, setInbox] = useState("create");
  const [sessions, setSessions] = useState<Session[]>([]);
  const [chosen, setChosen] = useState<number[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    get<Session[]>("/api/v1/sessions").then(setSessions, () => {});
  }, []);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const config: Record<string, unknown> = { api_url: apiUrl, account_id: Number(accountId), session_ids: chosen };
      if (inbox.trim()) config.inbox_id = inbox.trim() === "create" ? "create" : Number(inbox);
      await post("/api/v1/integrations", { provider: "chatwoot", api_key: apiKey, config });
      onCreated();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card chatwoot-form" onSubmit={submit}>
      <label>
        {t.integrations.apiUrl}
        <input type="url" required placeholder="https://app.chatwoot.com" value={apiUrl} onInput={(e) => setApiUrl(e.currentTarget.value)} />
      </label>
      <label>
        {t.integrations.accountId}
        <input inputMode="numeric" required pattern="[0-9]+" value={accountId} onInput={(e) => setAccountId(e.currentTarget.value)} />
      </label>
      <label>
        {t.integrations.apiKey}
        <input type="password" required value={apiKey} onInput={(e) => setApiKey(e.currentTarget.value)} />
      </label>
      <label>
        {t.integrations.inbox}
        <input value={inbox} onInput={(e) => setInbox(e.currentTarget.value)} aria-describedby="inbox-help" />
        <small id="inbox-help">{t.integrations.inboxCreate}</small>
      </label>
      <fieldset>
        <legend>{t.integrations.sessions}</legend>
        {sessions
          .filter((s) => !s.archived_at)
          .map((s) => (
            <label class="check">
              <input
                type="checkbox"
                checked={chosen.includes(s.id)}
                onChange={(e) =>
                  setChosen((old) => (e.currentTarget.checked ? [...old, s.id] : old.filter((id) => id !== s.id)))
                }
              />
              {s.name}
            </label>
          ))}
      </fieldset>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" class="primary" disabled={busy}>
        {busy ? t.integrations.testing : t.integrations.submit}
      </button>
    </form>
  );
}
