// One conversation: bubbles by direction with day separators and ack ticks that change live,
// older pages as the user scrolls up, and the send box (Enter sends, Shift+Enter a new line).
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { errorText, get, patch, post, put, query } from "../api";
import { Failure, Loading } from "../components/states";
import { dayKey, formatDaySeparator, formatPhone, formatTime } from "../format";
import { useEvent, useResync } from "../realtime";
import { linkClick } from "../router";
import { t } from "../strings";
import type { Conversation, Message, MessagePage } from "../types";
import { titleOf } from "./conversations";

const PAGE = 50;

function olderThan(a: string | null, b: string | null): boolean {
  return !!a && !!b && Date.parse(a) < Date.parse(b);
}

// By time (as instants: gateways write whole seconds, zapsync microseconds), then by id.
function order(a: Message, b: Message): number {
  const at = a.sent_at ? Date.parse(a.sent_at) : 0;
  const bt = b.sent_at ? Date.parse(b.sent_at) : 0;
  return at === bt ? a.id - b.id : at - bt;
}

// Acks only move forward; `failed` is final but for a retry that sends it after all.
const ACK_RANK: Record<string, number> = { pending: 0, failed: 1, sent: 2, delivered: 3, read: 4 };

const LOCAL = "local-"; // provider_message_id of a message the gateway has not taken yet
// How long the gateway's echo of a send stays hidden waiting for the server to fold it into
// ours; past it, whatever the server still holds is shown.
const ECHO_WAIT_MS = 15_000;

// Messages by id: a page fetched again, or an event heard twice, never shows a message twice.
// The send's answer (`pending`) may arrive after the event that it was sent: the later ack wins.
// `gone`: ids merged into another message (`message_merged`), never shown again.
// Two rows with one gateway id are a send and its echo (the server keeps one, the first
// stored: ours, which the send answered with): the later id goes, whichever arrived first.
function merged(old: Message[], incoming: Message[], gone: Set<number>): Message[] {
  const byId = new Map(old.map((m) => [m.id, m]));
  for (const m of incoming) {
    if (gone.has(m.id)) continue;
    const known = byId.get(m.id);
    const behind = known && (ACK_RANK[m.ack] ?? 0) < (ACK_RANK[known.ack] ?? 0);
    byId.set(m.id, behind ? { ...known, ...m, ack: known.ack, error: known.error } : { ...known, ...m });
  }
  const byGatewayId = new Map<string, Message>();
  for (const m of [...byId.values()].sort((a, b) => a.id - b.id)) {
    const key = m.provider_message_id;
    if (!key || key.startsWith(LOCAL)) continue;
    if (byGatewayId.has(key)) {
      gone.add(m.id);
      byId.delete(m.id);
    } else byGatewayId.set(key, m);
  }
  return [...byId.values()].sort(order);
}

const sameContent = (a: Message, b: Message) =>
  a.type === b.type && a.body === b.body && a.caption === b.caption && a.file_name === b.file_name;

// The gateway's echo of a send we have not yet heard confirmed: an outgoing message with our
// pending message's content, arrived after it. The server folds it into ours
// (`message_merged`) once the gateway's answer is written; until then it is not shown, so the
// thread never shows the message twice, whichever of the send's answer, the socket events and
// a refetch arrives first. `firstSeen` bounds the wait (a phone's own identical text shows).
function hiddenEchoes(messages: Message[], firstSeen: Map<number, number>, now: number): Set<number> {
  const hidden = new Set<number>();
  const ours = messages.filter((m) => m.direction === "out" && m.provider_message_id?.startsWith(LOCAL));
  if (ours.length === 0) return hidden;
  for (const m of messages) {
    if (m.direction !== "out" || !m.provider_message_id || m.provider_message_id.startsWith(LOCAL)) continue;
    if (now - (firstSeen.get(m.id) ?? now) >= ECHO_WAIT_MS) continue;
    if (ours.some((p) => p.id < m.id && !hidden.has(p.id) && sameContent(p, m))) hidden.add(m.id);
  }
  return hidden;
}

export function Thread({ conversationId }: { conversationId: number }) {
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [messages, setMessages] = useState<Message[] | null>(null);
  const [before, setBefore] = useState<number | null>(null);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true); // follow new messages while the user is at the bottom
  const keepFrom = useRef<number | null>(null); // scrollHeight before older messages were added
  const gone = useRef(new Set<number>());
  const firstSeen = useRef(new Map<number, number>());
  const [, setTick] = useState(0); // re-render when a held echo's wait ends
  const add = (incoming: Message[]) => {
    const now = Date.now();
    for (const m of incoming) if (!firstSeen.current.has(m.id)) firstSeen.current.set(m.id, now);
    setMessages((old) => merged(old ?? [], incoming, gone.current));
  };

  const markRead = useCallback(() => {
    put(`/api/v1/conversations/${conversationId}/read`).catch(() => {});
  }, [conversationId]);

  const loadNewest = useCallback(async () => {
    setError(null);
    try {
      const [conv, page] = await Promise.all([
        get<Conversation>(`/api/v1/conversations/${conversationId}`),
        get<MessagePage>(`/api/v1/conversations/${conversationId}/messages${query({ limit: PAGE })}`),
      ]);
      setConversation(conv);
      add(page.messages);
      setBefore((old) => (old === null ? page.next_before : old));
      if (conv.unread_count > 0) markRead();
    } catch (err) {
      setError(errorText(err));
    }
  }, [conversationId]);

  useEffect(() => {
    loadNewest();
  }, [conversationId]);
  useResync(loadNewest, [conversationId]);

  const loadOlder = async () => {
    if (before === null || loadingOlder) return;
    setLoadingOlder(true);
    keepFrom.current = scroller.current?.scrollHeight ?? null;
    try {
      const page = await get<MessagePage>(
        `/api/v1/conversations/${conversationId}/messages${query({ before, limit: PAGE })}`,
      );
      add(page.messages);
      setBefore(page.next_before);
    } finally {
      setLoadingOlder(false);
    }
  };

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (keepFrom.current !== null) {
      el.scrollTop += el.scrollHeight - keepFrom.current; // older ones above, the view stays
      keepFrom.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [messages]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 80) loadOlder();
  };

  const mine = (data: { conversation_id?: number }) => data.conversation_id === conversationId;
  useEvent(
    "new_message",
    (m: Message) => {
      if (!mine(m)) return;
      add([m]);
      if (m.direction === "in" && document.visibilityState === "visible") markRead();
    },
    [conversationId],
  );
  useEvent("message_updated", (m: Message) => mine(m) && add([m]), [conversationId]);
  useEvent(
    "message_merged",
    (data: { conversation_id: number; id: number; replaces: number }) => {
      if (!mine(data)) return;
      gone.current.add(data.replaces);
      setMessages((old) => old?.filter((m) => m.id !== data.replaces) ?? old);
      loadNewest();
    },
    [conversationId],
  );
  useEvent(
    "conversation_updated",
    (c: Conversation) =>
      c.id === conversationId &&
      // An event may arrive after the answer to a later change (resolve, then reopen): older rows lose.
      setConversation((old) => (old && olderThan(c.updated_at, old.updated_at) ? old : { ...old, ...c, contact: c.contact ?? old?.contact })),
    [conversationId],
  );

  const setStatus = async (status: string) => {
    try {
      setConversation(await patch<Conversation>(`/api/v1/conversations/${conversationId}`, { status }));
    } catch (err) {
      setError(errorText(err));
    }
  };

  const held = messages ? hiddenEchoes(messages, firstSeen.current, Date.now()) : new Set<number>();
  useEffect(() => {
    if (held.size === 0) return;
    const timer = setTimeout(() => setTick((n) => n + 1), ECHO_WAIT_MS);
    return () => clearTimeout(timer);
  }, [held.size, messages]);

  if (error && !messages) return <Failure error={error} retry={loadNewest} />;
  if (!conversation || !messages) return <Loading />;
  const shown = held.size ? messages.filter((m) => !held.has(m.id)) : messages;

  const resolved = conversation.status === "resolved";
  return (
    <div class="thread" data-testid="thread">
      <header class="thread-head">
        <a class="back" href="/conversas" onClick={linkClick("/conversas")} aria-label={t.conversations.back}>
          ←
        </a>
        <div class="who">
          <h2>{titleOf(conversation)}</h2>
          <span class="phone">{formatPhone(conversation.contact?.phone_e164)}</span>
          {conversation.channel && (
            <span class="channel" title={t.conversations.channelTitle}>
              {t.conversations.channel(conversation.channel)}
            </span>
          )}
        </div>
        <span class={`status ${conversation.status}`}>{t.status[conversation.status]}</span>
        <button type="button" onClick={() => setStatus(resolved ? "open" : "resolved")}>
          {resolved ? t.conversations.reopen : t.conversations.resolve}
        </button>
      </header>
      <div class="messages" ref={scroller} onScroll={onScroll} aria-live="polite">
        {before !== null && (
          <button type="button" class="more" onClick={loadOlder} disabled={loadingOlder}>
            {loadingOlder ? t.conversations.older : t.conversations.more}
          </button>
        )}
        {shown.length === 0 && <p class="state empty">{t.conversations.noMessages}</p>}
        {withDays(shown)}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <SendBox
        conversationId={conversationId}
        onSent={(m) => add([m])}
        closed={conversation.channel ? t.conversations.replyElsewhere(conversation.channel) : undefined}
      />
    </div>
  );
}

// Bubbles with a separator before each new day, as one flat keyed list (keyed Fragments lose
// track of moved children when a message changes place).
function withDays(messages: Message[]) {
  const out = [];
  let lastDay = "";
  for (const m of messages) {
    const day = m.sent_at ? dayKey(m.sent_at) : lastDay;
    if (m.sent_at && day !== lastDay) {
      out.push(
        <div class="day" role="separator" key={`day-${day}`}>
          <span>{formatDaySeparator(m.sent_at)}</span>
        </div>,
      );
    }
    lastDay = day;
    out.push(<Bubble key={m.id} message={m} />);
  }
  return out;
}

function Bubble({ message: m }: { message: Message }) {
  const label = t.conversations.media[m.type] ?? t.conversations.media.other;
  return (
    <div class={`bubble ${m.direction}`} data-message-id={m.id} data-direction={m.direction}>
      {m.deleted_at ? (
        <p class="deleted">{t.conversations.deleted}</p>
      ) : (
        <>
          <Media message={m} label={label} />
          {(m.body || m.caption) && <p class="text">{m.type === "text" ? m.body : m.caption || m.body}</p>}
        </>
      )}
      <span class="foot">
        <time dateTime={m.sent_at ?? undefined}>{formatTime(m.sent_at)}</time>
        {m.direction === "out" && <Ticks ack={m.ack} error={m.error} />}
      </span>
    </div>
  );
}

function Media({ message: m, label }: { message: Message; label: string }) {
  // Inbound media opens through zapsync (the gateway's own URL is often not openable); a file
  // the gateway no longer has fails to load and is shown as a placeholder, not a broken image.
  const src = m.media_view_url || m.media_url;
  const [failed, setFailed] = useState(false);
  if (m.type === "text" || m.type === "reaction") return null;
  if (!src) return <p class="media-missing">[{label}]</p>;
  if (failed) return <p class="media-missing media-unavailable">[{label}] {t.conversations.mediaUnavailable}</p>;
  const onError = () => setFailed(true);
  switch (m.type) {
    case "image":
    case "sticker":
      return (
        <a href={src} target="_blank" rel="noreferrer">
          <img src={src} alt={m.caption || label} loading="lazy" onError={onError} />
        </a>
      );
    case "video":
      return <video src={src} controls preload="metadata" onError={onError} />;
    case "audio":
      return <audio src={src} controls preload="metadata" onError={onError} />;
    default:
      return (
        <a class="document" href={src} target="_blank" rel="noreferrer">
          {m.file_name || label}
        </a>
      );
  }
}

const TICKS: Record<string, string> = { pending: "◷", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

function Ticks({ ack, error }: { ack: string; error?: string | null }) {
  const title = t.conversations.ack[ack] ?? ack;
  return (
    <span class={`ack ${ack}`} data-ack={ack} title={error ? `${title}: ${error}` : title} aria-label={title}>
      {TICKS[ack] ?? ""}
    </span>
  );
}

function SendBox({
  conversationId,
  onSent,
  closed,
}: {
  conversationId: number;
  onSent: (m: Message) => void;
  closed?: string; // why nothing can be sent from here (the server answers 409 too)
}) {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const file = useRef<HTMLInputElement>(null);

  const send = async (body: unknown) => {
    setBusy(true);
    setError(null);
    try {
      onSent(await post<Message>(`/api/v1/conversations/${conversationId}/messages`, body));
      return true;
    } catch (err) {
      setError(errorText(err));
      return false;
    } finally {
      setBusy(false);
    }
  };

  const sendText = async () => {
    const content = text.trim();
    if (!content || busy) return;
    if (await send({ type: "text", content })) setText("");
  };

  const upload = async () => {
    const chosen = file.current?.files?.[0];
    if (!chosen) return;
    const form = new FormData();
    form.append("file", chosen);
    if (text.trim()) form.append("caption", text.trim());
    if (await send(form)) setText("");
    if (file.current) file.current.value = "";
  };

  if (closed) {
    return (
      <div class="send closed" role="note">
        <textarea rows={1} disabled placeholder={closed} aria-label={closed} />
        <button type="button" class="primary" disabled>
          {t.conversations.send}
        </button>
      </div>
    );
  }

  return (
    <form
      class="send"
      onSubmit={(e) => {
        e.preventDefault();
        sendText();
      }}
    >
      <label class="attach" title={t.conversations.attach}>
        <PaperClip />
        <input type="file" ref={file} aria-label={t.conversations.attach} onChange={upload} />
      </label>
      <textarea
        rows={1}
        value={text}
        placeholder={t.conversations.placeholder}
        aria-label={t.conversations.placeholder}
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            sendText();
          }
        }}
      />
      <button type="submit" class="primary" disabled={busy || !text.trim()}>
        {t.conversations.send}
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function PaperClip() {
  return (
    <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2">
      <path d="M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4l7.9-7.9" />
    </svg>
  );
}
