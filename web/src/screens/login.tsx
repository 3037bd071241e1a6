import { useState } from "preact/hooks";
import { ApiError, post } from "../api";
import { t } from "../strings";
import type { LoginAnswer } from "../types";

export function LoginScreen({ onLogin }: { onLogin: (answer: LoginAnswer) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onLogin(await post<LoginAnswer>("/api/v1/auth/login", { email, password }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setError(t.login.wrong);
      else if (err instanceof ApiError && err.status === 429)
        setError(t.login.tooMany(err.retryAfter ?? 60));
      else setError(err instanceof ApiError ? err.detail : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <form onSubmit={submit} class="card" aria-labelledby="login-title">
        <h1 id="login-title">{t.login.title}</h1>
        <label>
          {t.login.email}
          <input
            type="email"
            name="email"
            autoComplete="username"
            required
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
          />
        </label>
        <label>
          {t.login.password}
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t.login.submitting : t.login.submit}
        </button>
      </form>
    </main>
  );
}
