// Conversas: the list (search, filters, unread badges, live order) and the open thread.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { errorText, get, post, query } from "../api";
import { Empty, Failure, Loading } from "../components/states";
import { formatListDate, formatPhone } from "../format";
import { useEvent, useResync } from "../realtime";
import { linkClick } from "../router";
import { useIsAdmin } from "../session";
import { t } from "../strings";
import type { Conversation, ConversationPage, ImportReport, Message, Session } from "../types";
import { Thread } from "./thread";

const PAGE = 50;

export function titleOf(c: Conversation): string {
  return c.contact?.name || c.name || formatPhone(c.contact?.phone_e164) || c.chat_jid;
}

// Newest activity first, as every inbox orders it.
function byActivity(a: Conversation, b: Conversation): number {
  const at = a.last_message_at ? Date.parse(a.last_message_at) : 0;
  const bt = b.last_message_at ? Date.parse(b.last_message_at) : 0;
  return at === bt ? b.id - a.id : bt - at;
}

// Whether `a` is a later instant than `b` (ISO strings of any precision).
function newer(a: string | null, b: string | null): boolean {
  return !!a && (!b || Date.parse(a) > Date.parse(b));
}

type Seen = { at: number; id: number };

// Messages order by (time, id): gateways stamp whole seconds, so a customer's message and a
// reply can share a time, and the later id is the later message.
function after(a: Seen, b: Seen | undefined): boolean {
  return !b || a.at > b.at || (a.at === b.at && a.id > b.id);
}

export function ConversationsScreen({ path }: { path: string }) {
  const openId = Number(path.split("/")[2]) || null;
  const [q, setQ] = useState("");
  const [sessionId, setSessionId] = useState("");
  const [status, setStatus] = useState("");
  const [items, setItems] = useState<Conversation[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [sessions, setSessions] = useState<Session[]>([]);
  const filters = useRef({ q, sessionId, status });
  filters.current = { q, sessionId, status };
  // Live events applied so far: a list fetched while one arrived may predate it, so it is
  // fetched once more rather than undo the event.
  const heard = useRef(0);
  // The newest message heard per conversation (`new_message`): a `conversation_updated`
  // written for an earlier one (same second, delivered late) must not bring its preview back.
  const newest = useRef(new Map<number, Seen>());

  const load = useCallback(async (): Promise<void> => {
    const { q, sessionId, status } = filters.current;
    const before = heard.current;
    setError(null);
    try {
      const page = await get<ConversationPage>(
        `/api/v1/conversations${query({ q, session_id: sessionId, status, limit: PAGE })}`,
      );
      // A later search may have answered first: keep only the answer to the current filters.
      if (filters.current.q !== q || filters.current.sessionId !== sessionId || filters.current.status !== status) return;
      setItems(page.items);
      setCursor(page.next_cursor);
      if (heard.current !== before) return load();
    } catch (err) {
      setError(errorText(err));
    }
  }, []);

  const loadMore = async () => {
    if (!cursor) return;
    const { q, sessionId, status } = filters.current;
    const page = await get<ConversationPage>(
      `/api/v1/conversations${query({ q, session_id: sessionId, status, limit: PAGE, cursor })}`,
    );
    setItems((old) => {
      const known = new Set((old ?? []).map((c) => c.id));
      return [...(old ?? []), ...page.items.filter((c) => !known.has(c.id))];
    });
    setCursor(page.next_cursor);
  };

  const loadSessions = useCallback(() => {
    get<Session[]>("/api/v1/sessions").then(setSessions, () => {});
  }, []);

  useEffect(loadSessions, []);
  useEffect(() => {
    const timer = setTimeout(load, q ? 250 : 0); // a pause in typing, not every key
    return () => clearTimeout(timer);
  }, [q, sessionId, status]);
  useResync(() => {
    load();
    loadSessions();
  });

  const matches = (c: Conversation) => {
    const f = filters.current;
    if (f.sessionId && String(c.session_id) !== f.sessionId) return false;
    if (f.status && c.status !== f.status) return false;
    return true;
  };

  // A changed conversation moves to its place; one the filters exclude leaves the list.
  useEvent("conversation_updated", (c: Conversation) => {
    heard.current += 1;
    if (filters.current.q) {
      load(); // the server decides what a search matches
      return;
    }
    setItems((old) => {
      if (!old) return old;
      const previous = old.find((x) => x.id === c.id);
      const merged = { ...previous, ...c, contact: c.contact ?? previous?.contact };
      // The newest message seen (by `new_message`) keeps its preview over an older one, and
      // over one of the same time (the event cannot say which message it was written for).
      const seen = newest.current.get(c.id);
      const at = c.last_message_at ? Date.parse(c.last_message_at) : 0;
      const behind = (!!seen && seen.at >= at) || newer(previous?.last_message_at ?? null, c.last_message_at);
      if (previous && behind) {
        merged.last_message_at = previous.last_message_at;
        merged.last_message_preview = previous.last_message_preview;
      }
      const rest = old.filter((x) => x.id !== c.id);
      return matches(merged) ? [...rest, merged].sort(byActivity) : rest;
    });
  });
  useEvent("new_message", (m: Message) => {
    heard.current += 1;
    if (!m.sent_at) return;
    const seen = { at: Date.parse(m.sent_at), id: m.id };
    if (!after(seen, newest.current.get(m.conversation_id))) return;
    newest.current.set(m.conversation_id, seen);
    setItems((old) => {
      const row = old?.find((c) => c.id === m.conversation_id);
      if (!old || !row || newer(row.last_message_at, m.sent_at)) return old;
      const preview = m.body || m.caption || t.conversations.media[m.type] || "";
      const moved = { ...row, last_message_at: m.sent_at, last_message_preview: preview };
      return [...old.filter((c) => c.id !== row.id), moved].sort(byActivity);
    });
  });
  useEvent("messages_read", (data: { conversation_id: number; unread_count: number }) => {
    heard.current += 1;
    setItems((old) =>
      old?.map((c) => (c.id === data.conversation_id ? { ...c, unread_count: data.unread_count } : c)) ?? old,
    );
  });
  useEvent("session_status", loadSessions);
  // An import writes many conversations and announces only its run: fetch the list once done.
  useEvent("sync_run", (run: { kind: string; status: string }) => {
    if (run.kind === "import-conversations" && run.status !== "running") load();
  });

  const names = new Map(sessions.map((s) => [s.id, s.name]));

  return (
    <div class={`inbox ${openId ? "has-thread" : ""}`}>
      <section class="list-pane" aria-label={t.nav.conversations}>
        <div class="filters">
          <input
            type="search"
            placeholder={t.conversations.search}
            aria-label={t.conversations.search}
            value={q}
            onInput={(e) => setQ(e.currentTarget.value)}
          />
          <div class="row">
            <select
              aria-label={t.conversations.connection}
              value={sessionId}
              onChange={(e) => setSessionId(e.currentTarget.value)}
            >
              <option value="">
                {t.conversations.connection}: {t.common.all}
              </option>
              {sessions
                .filter((s) => !s.archived_at)
                .map((s) => (
                  <option value={String(s.id)}>{s.name}</option>
                ))}
            </select>
            <select
              aria-label={t.conversations.status}
              value={status}
              onChange={(e) => setStatus(e.currentTarget.value)}
            >
              <option value="">
                {t.conversations.status}: {t.common.all}
              </option>
              {["open", "pending", "resolved"].map((s) => (
                <option value={s}>{t.status[s]}</option>
              ))}
            </select>
          </div>
          <SyncConversations sessions={sessions} onDone={load} />
        </div>
        {error ? (
          <Failure error={error} retry={load} />
        ) : items === null ? (
          <Loading />
        ) : items.length === 0 ? (
          <Empty text={q || sessionId || status ? t.conversations.emptyFiltered : t.conversations.empty} />
        ) : (
          <ul class="conversations" data-testid="conversation-list">
            {items.map((c) => (
              <li key={c.id}>
                <a
                  href={`/conversas/${c.id}`}
                  onClick={linkClick(`/conversas/${c.id}`)}
                  class="conversation"
                  aria-current={c.id === openId ? "true" : undefined}
                  data-conversation-id={c.id}
                >
                  <span class="avatar" aria-hidden="true">
                    {titleOf(c).slice(0, 1).toUpperCase()}
                  </span>
                  <span class="summary">
                    <span class="top">
                      <span class="name">{titleOf(c)}</span>
                      <time class="when" dateTime={c.last_message_at ?? undefined}>
                        {formatListDate(c.last_message_at)}
                      </time>
                    </span>
                    <span class="bottom">
                      <span class="preview">{c.last_message_preview ?? ""}</span>
                      {c.unread_count > 0 && (
                        <span class="badge" aria-label={t.conversations.unread(c.unread_count)}>
                          {c.unread_count}
                        </span>
                      )}
                    </span>
                    <span class="meta">
                      {c.session_id !== null ? (names.get(c.session_id) ?? "") : ""}
                      {c.channel && (
                        <span class="channel" title={t.conversations.channelTitle}>
                          {t.conversations.channel(c.channel)}
                        </span>
                      )}
                      {c.status !== "open" && <span class={`status ${c.status}`}>{t.status[c.status]}</span>}
                      {(c.labels ?? []).map((label) => (
                        <span class="label" key={label} title={t.conversations.label}>
                          {label}
                        </span>
                      ))}
                    </span>
                  </span>
                </a>
              </li>
            ))}
            {cursor && (
              <li>
                <button type="button" class="more" onClick={loadMore}>
                  {t.conversations.more}
                </button>
              </li>
            )}
          </ul>
        )}
      </section>
      <section class="thread-pane" aria-label="mensagens">
        {openId ? (
          <Thread key={openId} conversationId={openId} />
        ) : (
          <Empty text={t.conversations.pick} />
        )}
      </section>
    </div>
  );
}

// "Sincronizar conversas": imports each connected session's chats, then shows the counts.
function SyncConversations({ sessions, onDone }: { sessions: Session[]; onDone: () => void }) {
  const admin = useIsAdmin();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (!admin) return null;

  const run = async () => {
    setResult(null);
    setError(null);
    setBusy(true);
    try {
      // Asked now, not the list's copy: it may not have arrived yet, or be out of date.
      const current = await get<Session[]>("/api/v1/sessions").catch(() => sessions);
      const connected = current.filter((s) => s.status === "connected" && !s.archived_at);
      if (connected.length === 0) {
        setResult(t.conversations.syncNone);
        return;
      }
      const reports = await Promise.all(
        connected.map((s) => post<ImportReport>(`/api/v1/sessions/${s.id}/sync-conversations`)),
      );
      const sum = (key: "created" | "skipped" | "updated") => reports.reduce((n, r) => n + r[key], 0);
      setResult(t.conversations.syncResult(sum("created"), sum("skipped"), sum("updated")));
      const errors = reports.flatMap((r) => r.error_messages);
      if (errors.length) setError(errors.join("; "));
      onDone();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="sync">
      <button type="button" onClick={run} disabled={busy}>
        {busy ? t.conversations.syncing : t.conversations.sync}
      </button>
      {result && (
        <p class="note" role="status" data-testid="sync-result">
          {result}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
