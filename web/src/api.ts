// Requests to zapsync's API with the page's token. A refusal becomes an ApiError carrying the
// problem details' reason (`detail`), shown to the user as is.
import type { LoginAnswer } from "./types";

const TOKEN_KEY = "zapsync.login";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly retryAfter: number | null = null,
  ) {
    super(detail);
  }
}

let onUnauthorized: () => void = () => {};

export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export function storedLogin(): LoginAnswer | null {
  const raw = localStorage.getItem(TOKEN_KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as LoginAnswer;
  } catch {
    return null;
  }
}

export function keepLogin(login: LoginAnswer | null): void {
  if (login) localStorage.setItem(TOKEN_KEY, JSON.stringify(login));
  else localStorage.removeItem(TOKEN_KEY);
}

export function token(): string | null {
  return storedLogin()?.token ?? null;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let resp: Response;
  try {
    resp = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, "sem resposta do servidor");
  }
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!resp.ok) {
    const detail = (data && (data.detail as string)) || resp.statusText;
    const retry = resp.headers.get("Retry-After");
    if (resp.status === 401 && path !== "/api/v1/auth/login") onUnauthorized();
    throw new ApiError(resp.status, detail, retry ? Number(retry) : null);
  }
  return data as T;
}

export const get = <T>(path: string) => request<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => request<T>("POST", path, body);
export const patch = <T>(path: string, body?: unknown) => request<T>("PATCH", path, body);
export const put = <T>(path: string, body?: unknown) => request<T>("PUT", path, body);
export const del = <T>(path: string) => request<T>("DELETE", path);

export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function errorText(err: unknown): string {
  return err instanceof ApiError ? err.detail : String(err);
}
