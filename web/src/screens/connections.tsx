// Conexões: the WhatsApp sessions with live status, pairing by QR code, status sync and the
// admin actions (create, log out, delete) behind a confirmation.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { renderSVG } from "uqr";
import { ApiError, del, errorText, get, post } from "../api";
import { Confirm, type Ask } from "../components/confirm";
import { Empty, Failure, Loading } from "../components/states";
import { formatPhone, formatStamp } from "../format";
import { useEvent, useResync } from "../realtime";
import { useIsAdmin, useLogin } from "../session";
import { t } from "../strings";
import type { Qr, Session, StatusHistoryPage, StatusEvent, StatusSyncReport } from "../types";

const LIMIT = 5; // ZAPSYNC_MAX_SESSIONS_PER_USER's default; the server's refusal says the real one
const PAIRING = new Set(["qr_pending", "connecting", "creating"]);

export function statusLabel(status: string): string {
  return t.sessionStatus[status] ?? status;
}

export function ConnectionsScreen() {
  const admin = useIsAdmin();
  const me = useLogin().user;
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [qrs, setQrs] = useState<Record<number, Qr>>({});
  // QRs already known (a creation's answer, `qr_updated`): not fetched again, since by the
  // time a fetch arrived the phone may have paired and the gateway has no QR to give.
  const knownQrs = useRef(qrs);
  knownQrs.current = qrs;
  const [ask, setAsk] = useState<Ask | null>(null);
  const [creating, setCreating] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      const list = await get<Session[]>("/api/v1/sessions");
      setSessions(list);
      if (admin) list.filter((s) => s.status === "qr_pending" && !knownQrs.current[s.id]).forEach((s) => fetchQr(s.id));
    } catch (err) {
      setError(errorText(err));
    }
  }, []);

  const fetchQr = async (id: number) => {
    try {
      const qr = await get<Qr>(`/api/v1/sessions/${id}/qr`);
      setQrs((old) => ({ ...old, [id]: qr }));
    } catch {
      // Not pairable right now (connected meanwhile): the status badge says why.
    }
  };

  useEffect(() => {
    load();
  }, []);
  useResync(load);
  useEvent("session_status", (data: { session_id: number; status?: string; archived?: boolean } & Partial<Session>) => {
    if (data.archived) {
      setSessions((old) => old?.filter((s) => s.id !== data.session_id) ?? old);
      return;
    }
    setSessions((old) => {
      if (!old) return old;
      if (!old.some((s) => s.id === data.session_id)) {
        load(); // created elsewhere
        return old;
      }
      return old.map((s) =>
        s.id === data.session_id
          ? { ...s, status: data.status ?? s.status, status_reason: data.status_reason ?? null, phone: data.phone ?? s.phone }
          : s,
      );
    });
  });
  // The event carries the code itself: drawn here, nothing fetched (the session may be paired
  // by the time a fetch arrived).
  useEvent("qr_updated", (data: { session_id: number; code: string | null; pairing_code: string | null }) => {
    if (admin) setQrs((old) => ({ ...old, [data.session_id]: { code: data.code, pairing_code: data.pairing_code } }));
  });

  const act = async (fn: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await fn();
      await load();
    } catch (err) {
      setActionError(errorText(err));
    }
  };

  if (error) return <Failure error={error} retry={load} />;
  if (!sessions) return <Loading />;
  const mine = sessions.filter((s) => s.created_by === me.id && !s.archived_at).length;
  const atLimit = mine >= LIMIT;

  return (
    <div class="page connections">
      <header class="page-head">
        <h1>{t.connections.title}</h1>
        {admin && <StatusSync sessions={sessions} onDone={load} />}
        {admin && (
          <button type="button" class="primary" disabled={atLimit} onClick={() => setCreating((v) => !v)}>
            {t.connections.create}
          </button>
        )}
      </header>
      {admin && atLimit && (
        <p class="note warn" role="status">
          {t.connections.limit}
        </p>
      )}
      {creating && (
        <NewConnection
          onCreated={(s) => {
            setCreating(false);
            if (s.qr) {
              knownQrs.current = { ...knownQrs.current, [s.id]: s.qr };
              setQrs((old) => ({ ...old, [s.id]: s.qr! }));
            }
            load();
          }}
          onCancel={() => setCreating(false)}
        />
      )}
      {actionError && (
        <p class="error" role="alert">
          {actionError}
        </p>
      )}
      {sessions.length === 0 ? (
        <Empty text={t.connections.empty} />
      ) : (
        <ul class="cards">
          {sessions.map((s) => (
            <li class="card session" data-session-id={s.id} key={s.id}>
              <div class="card-head">
                <h2>{s.name}</h2>
                <span class={`badge status-${s.status}`} data-status={s.status}>
                  {statusLabel(s.status)}
                </span>
              </div>
              <dl>
                <dt>{t.connections.gateway}</dt>
                <dd>{s.provider}</dd>
                <dt>{t.connections.phone}</dt>
                <dd>{formatPhone(s.phone) || t.common.none}</dd>
                <dt>{t.connections.checkedAt}</dt>
                <dd>{formatStamp(s.status_checked_at)}</dd>
              </dl>
              {s.status_reason && <p class="reason">{s.status_reason}</p>}
              <StatusHistory sessionId={s.id} status={s.status} />
              {admin && PAIRING.has(s.status) && <QrPanel qr={qrs[s.id]} />}
              {admin && s.provider === "sandbox" && s.status === "qr_pending" && (
                <button type="button" onClick={() => act(() => post(`/api/v1/sandbox/sessions/${s.id}/scan`))}>
                  {t.connections.sandboxScan}
                </button>
              )}
              {s.status === "connected" && qrs[s.id] && (
                <p class="paired" role="status">
                  {t.connections.connectedNow}
                </p>
              )}
              {admin && (
                <div class="actions">
                  {["disconnected", "logged_out", "failed"].includes(s.status) && (
                    <button
                      type="button"
                      onClick={() =>
                        act(async () => {
                          const created = await post<Session>(`/api/v1/sessions/${s.id}/connect`);
                          if (created.qr) setQrs((old) => ({ ...old, [s.id]: created.qr! }));
                        })
                      }
                    >
                      {t.connections.reconnect}
                    </button>
                  )}
                  {s.status === "connected" && (
                    <button
                      type="button"
                      onClick={() =>
                        setAsk({
                          text: t.connections.confirmLogout(s.name),
                          action: () => act(() => post(`/api/v1/sessions/${s.id}/logout`)),
                        })
                      }
                    >
                      {t.connections.logout}
                    </button>
                  )}
                  <button
                    type="button"
                    class="danger"
                    onClick={() =>
                      setAsk({
                        text: t.connections.confirmDelete(s.name),
                        action: () => act(() => del(`/api/v1/sessions/${s.id}`)),
                      })
                    }
                  >
                    {t.connections.delete}
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
      <Confirm ask={ask} onClose={() => setAsk(null)} />
    </div>
  );
}

function qrImage(code: string): string {
  return `data:image/svg+xml;utf8,${encodeURIComponent(renderSVG(code, { border: 2 }))}`;
}

function QrPanel({ qr }: { qr: Qr | undefined }) {
  return (
    <div class="qr" data-testid="qr">
      <p>{t.connections.qrTitle}</p>
      {qr?.code || qr?.png_data_url ? (
        <img src={qr.code ? qrImage(qr.code) : qr.png_data_url!} alt="QR code" width={220} height={220} />
      ) : (
        <p class="state loading">{t.connections.qrWaiting}</p>
      )}
      {qr?.pairing_code && (
        <p>
          {t.connections.pairingCode}: <code>{qr.pairing_code}</code>
        </p>
      )}
    </div>
  );
}

function StatusSync({ sessions, onDone }: { sessions: Session[]; onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState<StatusSyncReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const names = new Map(sessions.map((s) => [s.id, s.name]));

  const run = async () => {
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      setReport(await post<StatusSyncReport>("/api/v1/status-sync"));
      onDone();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="status-sync">
      <button type="button" onClick={run} disabled={busy}>
        {busy ? t.connections.statusSyncing : t.connections.statusSync}
      </button>
      {report && (
        <div class="note" role="status" data-testid="status-sync-report">
          {report.changed.length === 0 && report.errors.length === 0 && <p>{t.connections.allInStep(report.checked)}</p>}
          {report.changed.length > 0 && (
            <ul>
              {report.changed.map((c) => (
                <li>
                  {t.connections.changed(names.get(c.session_id) ?? `#${c.session_id}`, statusLabel(c.from), statusLabel(c.to))}
                </li>
              ))}
            </ul>
          )}
          {report.errors.length > 0 && (
            <p class="error">
              {t.connections.syncErrors}{" "}
              {report.errors.map((e) => `${names.get(e.session_id) ?? e.session_id}: ${e.error ?? ""}`).join("; ")}
            </p>
          )}
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

const GATEWAYS: Record<string, { label: string; fields: [string, string][] }> = {
  sandbox: { label: "Sandbox (simulado)", fields: [] },
  evolution: {
    label: "Evolution API",
    fields: [
      ["base_url", t.connections.baseUrl],
      ["api_key", t.connections.apiKey],
      ["instance", t.connections.instance],
    ],
  },
  waha: {
    label: "WAHA",
    fields: [
      ["base_url", t.connections.baseUrl],
      ["api_key", t.connections.apiKey],
      ["session", t.connections.wahaSession],
    ],
  },
  megaapi: {
    label: "MegaAPI",
    fields: [
      ["base_url", t.connections.baseUrl],
      ["token", t.connections.token],
      ["instance_key", t.connections.instanceKey],
    ],
  },
};

function NewConnection({ onCreated, onCancel }: { onCreated: (s: Session) => void; onCancel: () => void }) {
  const [name, setName] = useState("");
  const [provider, setProvider] = useState("sandbox");
  const [config, setConfig] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const fields = Object.fromEntries(GATEWAYS[provider].fields.map(([key]) => [key, config[key] ?? ""]));
      onCreated(await post<Session>("/api/v1/sessions", { name, provider, config: fields }));
    } catch (err) {
      setError(err instanceof ApiError && err.status === 409 && err.detail.includes("at most") ? `${t.connections.limit} (${err.detail})` : errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card new-connection" onSubmit={submit} aria-label={t.connections.create}>
      <label>
        {t.connections.name}
        <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        {t.connections.gateway}
        <select value={provider} onChange={(e) => setProvider(e.currentTarget.value)}>
          {Object.entries(GATEWAYS).map(([key, g]) => (
            <option value={key}>{g.label}</option>
          ))}
        </select>
      </label>
      {GATEWAYS[provider].fields.map(([key, label]) => (
        <label key={`${provider}-${key}`}>
          {label}
          <input
            required
            type={key === "base_url" ? "url" : "text"}
            value={config[key] ?? ""}
            onInput={(e) => setConfig((old) => ({ ...old, [key]: e.currentTarget.value }))}
          />
        </label>
      ))}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="actions">
        <button type="button" onClick={onCancel}>
          {t.common.cancel}
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t.connections.creating : t.connections.submit}
        </button>
      </div>
    </form>
  );
}

// "Histórico": the session's status changes, newest first, fetched when opened and again when
// its status changes while open; older pages on demand.
function StatusHistory({ sessionId, status }: { sessionId: number; status: string }) {
  const [open, setOpen] = useState(false);
  const [events, setEvents] = useState<StatusEvent[] | null>(null);
  const [before, setBefore] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const url = `/api/v1/sessions/${sessionId}/status-history`;

  const loadNewest = useCallback(async () => {
    setError(null);
    try {
      const page = await get<StatusHistoryPage>(url);
      setEvents(page.events);
      setBefore(page.next_before);
    } catch (err) {
      setError(errorText(err));
    }
  }, [url]);

  useEffect(() => {
    if (open) loadNewest();
  }, [open, status]);
  useResync(() => open && loadNewest(), [open]);

  const loadOlder = async () => {
    if (before === null) return;
    try {
      const page = await get<StatusHistoryPage>(`${url}?before=${before}`);
      setEvents((old) => {
        const known = new Set((old ?? []).map((e) => e.id));
        return [...(old ?? []), ...page.events.filter((e) => !known.has(e.id))];
      });
      setBefore(page.next_before);
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <details class="history" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>{t.statusHistory.title}</summary>
      {!open ? null : error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : events === null ? (
        <p class="state">{t.statusHistory.loading}</p>
      ) : events.length === 0 ? (
        <p class="state empty">{t.statusHistory.empty}</p>
      ) : (
        <ol class="history-events" data-testid="status-history">
          {events.map((e) => (
            <li key={e.id} data-source={e.source}>
              <span class="move">
                {e.from_status ? statusLabel(e.from_status) : t.statusHistory.created} → {statusLabel(e.to_status)}
              </span>{" "}
              <span class="source">{t.statusHistory.source[e.source] ?? e.source}</span>{" "}
              <time dateTime={e.at}>{formatStamp(e.at)}</time>
              {e.reason && <span class="reason"> · {e.reason}</span>}
            </li>
          ))}
        </ol>
      )}
      {open && before !== null && (
        <button type="button" class="more" onClick={loadOlder}>
          {t.statusHistory.more}
        </button>
      )}
    </details>
  );
}
