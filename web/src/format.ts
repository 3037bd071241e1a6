// Dates and times in the browser's own time zone, written the Brazilian way.
import { t } from "./strings";

const LOCALE = "pt-BR";
const time = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat(LOCALE, { day: "2-digit", month: "2-digit", year: "numeric" });
const longDay = new Intl.DateTimeFormat(LOCALE, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
const stamp = new Intl.DateTimeFormat(LOCALE, { dateStyle: "short", timeStyle: "short" });
const dayKeyFormat = new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit" });

export function dayKey(iso: string): string {
  return dayKeyFormat.format(new Date(iso));
}

export function formatTime(iso: string | null): string {
  return iso ? time.format(new Date(iso)) : "";
}

export function formatStamp(iso: string | null): string {
  return iso ? stamp.format(new Date(iso)) : t.common.none;
}

// The list shows a time for today, "Ontem", else the date.
export function formatListDate(iso: string | null): string {
  if (!iso) return "";
  const key = dayKey(iso);
  const now = new Date();
  if (key === dayKey(now.toISOString())) return formatTime(iso);
  if (key === dayKey(new Date(now.getTime() - 86_400_000).toISOString())) return t.conversations.yesterday;
  return day.format(new Date(iso));
}

export function formatDaySeparator(iso: string): string {
  const key = dayKey(iso);
  const now = new Date();
  if (key === dayKey(now.toISOString())) return t.conversations.today;
  if (key === dayKey(new Date(now.getTime() - 86_400_000).toISOString())) return t.conversations.yesterday;
  return longDay.format(new Date(iso));
}

export function formatPhone(e164: string | null | undefined): string {
  if (!e164) return "";
  const m = /^\+55(\d{2})(\d{4,5})(\d{4})$/.exec(e164);
  return m ? `+55 (${m[1]}) ${m[2]}-${m[3]}` : e164;
}
