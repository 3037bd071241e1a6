// The API's shapes, as its OpenAPI document (/openapi.json) names them.
export interface User {
  id: number;
  email: string;
  name: string | null;
  role: string;
}

export interface Organization {
  id: number;
  name: string;
}

export interface LoginAnswer {
  token: string;
  token_id: number;
  user: User;
  organization: Organization;
}

export interface Contact {
  id: number;
  phone_e164: string | null;
  name: string | null;
}

export interface Conversation {
  id: number;
  session_id: number | null; // null: a helpdesk channel's conversation (Chatwoot e-mail, ...)
  integration_id?: number | null;
  channel?: string | null; // "email", "web_widget", ...; null for WhatsApp's
  contact_id: number | null;
  chat_jid: string;
  is_group: boolean;
  name: string | null;
  status: string;
  unread_count: number;
  last_message_at: string | null;
  last_message_preview: string | null;
  labels?: string[]; // the helpdesk's (Chatwoot's) labels
  updated_at: string | null;
  contact?: Contact | null;
}

export interface ConversationPage {
  items: Conversation[];
  next_cursor: string | null;
}

export interface Message {
  id: number;
  conversation_id: number;
  direction: "in" | "out";
  sender: string;
  type: string;
  body: string | null;
  media_url: string | null;
  // zapsync's own signed URL for inbound media (fetched from the gateway on first view)
  media_view_url?: string | null;
  mime_type: string | null;
  file_name: string | null;
  caption: string | null;
  ack: string;
  sent_at: string | null;
  deleted_at: string | null;
  error?: string | null;
  // `local-…` until the gateway takes a message we sent, then the gateway's id
  provider_message_id?: string | null;
}

export interface MessagePage {
  messages: Message[];
  next_before: number | null;
  has_more: boolean;
}

export interface Qr {
  code: string | null;
  pairing_code?: string | null;
  png_data_url?: string | null;
}

export interface Session {
  id: number;
  name: string;
  provider: string;
  status: string;
  status_reason: string | null;
  status_checked_at: string | null;
  phone: string | null;
  archived_at: string | null;
  created_by: number | null;
  qr?: Qr | null;
  qr_reason?: string | null;
}

export interface StatusSyncReport {
  checked: number;
  changed: { session_id: number; from: string; to: string }[];
  unchanged: number;
  errors: { session_id: number; error: string | null }[];
}

export interface ImportReport {
  session_id: number;
  status: string;
  created: number;
  updated: number;
  skipped: number;
  errors: number;
  error_messages: string[];
}

export interface RunCounts {
  synced: number;
  created: number;
  updated: number;
  skipped: number;
  errors: number;
}

export interface RunSummary {
  id: number;
  kind: string;
  trigger: string;
  status: string;
  started_at: string;
  finished_at: string | null;
  counts: RunCounts;
  error_messages: string[] | null;
}

export interface Job {
  name: string;
  description: string;
  schedule: string;
  scheduled: boolean;
  last_run: RunSummary | null;
  next_run: string | null;
}

export interface Integration {
  id: number;
  provider: string;
  status: string;
  config: { account_id: number; api_url: string; inbox_id: number | null; session_ids: number[] };
  webhook_url: string;
  last_error: string | null;
}

// GET /api/v1/sync/runs: one run in the seed's envelope.
export interface SyncRun {
  id: number;
  kind: string;
  status: string;
  integration_id: number | null;
  started_at: string;
  finished_at: string | null;
  synced: number;
  created: number;
  updated: number;
  skipped: number;
  errors: number;
  error_messages: string[];
}

export interface SyncResult {
  run_id: number;
  status: string;
  synced: number;
  created: number;
  updated: number;
  skipped: number;
  errors: number;
  error_messages: string[];
}

// One row of a session's status history, newest first (`/sessions/{id}/status-history`).
export interface StatusEvent {
  id: number;
  from_status: string | null;
  to_status: string;
  source: string;
  reason: string | null;
  at: string;
}

export interface StatusHistoryPage {
  events: StatusEvent[];
  next_before: number | null;
}
