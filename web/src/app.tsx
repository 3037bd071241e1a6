// The page's shell: the login gate, the navigation, the socket's state, and the screens.
import { useEffect, useState } from "preact/hooks";
import { keepLogin, post, storedLogin, whenUnauthorized, get } from "./api";
import { realtime, useSocketState } from "./realtime";
import { linkClick, navigate, usePath } from "./router";
import { LoginContext } from "./session";
import { t } from "./strings";
import type { LoginAnswer } from "./types";
import { LoginScreen } from "./screens/login";
import { ConversationsScreen } from "./screens/conversations";
import { ConnectionsScreen } from "./screens/connections";
import { IntegrationsScreen } from "./screens/integrations";
import { JobsScreen } from "./screens/jobs";

const SCREENS = [
  { path: "/conversas", label: t.nav.conversations },
  { path: "/conexoes", label: t.nav.connections },
  { path: "/integracoes", label: t.nav.integrations },
  { path: "/tarefas", label: t.nav.jobs },
];

export function App() {
  const [login, setLogin] = useState<LoginAnswer | null>(storedLogin);
  const path = usePath();

  const end = () => {
    realtime.stop();
    keepLogin(null);
    setLogin(null);
    navigate("/login");
  };

  useEffect(() => {
    whenUnauthorized(end);
    realtime.onRevoked = end;
  }, []);

  useEffect(() => {
    if (!login) return;
    realtime.start(login.token);
    // A kept login may have been revoked meanwhile: the 401 ends it.
    get("/api/v1/me").catch(() => {});
    return () => realtime.stop();
  }, [login?.token]);

  useEffect(() => {
    if (login && (path === "/" || path === "/login")) navigate("/conversas");
  }, [login, path]);

  if (!login) {
    return (
      <LoginScreen
        onLogin={(answer) => {
          keepLogin(answer);
          setLogin(answer);
          navigate("/conversas");
        }}
      />
    );
  }
  const logout = async () => {
    try {
      await post("/api/v1/auth/logout");
    } finally {
      end();
    }
  };

  return (
    <LoginContext.Provider value={login}>
      <div class="shell">
        <header class="topbar">
          <strong class="brand">{t.appName}</strong>
          <nav aria-label="principal">
            {SCREENS.map((screen) => (
              <a
                href={screen.path}
                onClick={linkClick(screen.path)}
                aria-current={path.startsWith(screen.path) ? "page" : undefined}
              >
                {screen.label}
              </a>
            ))}
          </nav>
          <span class="who" title={login.user.email}>
            {login.organization.name}
          </span>
          <button type="button" class="link" onClick={logout}>
            {t.nav.logout}
          </button>
        </header>
        <SocketBanner />
        <main>
          {path.startsWith("/conexoes") ? (
            <ConnectionsScreen />
          ) : path.startsWith("/integracoes") ? (
            <IntegrationsScreen />
          ) : path.startsWith("/tarefas") ? (
            <JobsScreen />
          ) : (
            <ConversationsScreen path={path} />
          )}
        </main>
      </div>
    </LoginContext.Provider>
  );
}

function SocketBanner() {
  const state = useSocketState();
  if (state !== "lost") return null;
  return (
    <div class="banner offline" role="status" data-testid="socket-lost">
      {t.socket.offline}
    </div>
  );
}
