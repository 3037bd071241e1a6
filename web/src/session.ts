// Who is logged in, for the screens: their role decides which admin actions they see.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { LoginAnswer } from "./types";

export const LoginContext = createContext<LoginAnswer | null>(null);

export function useLogin(): LoginAnswer {
  const login = useContext(LoginContext);
  if (!login) throw new Error("useLogin outside a logged-in page");
  return login;
}

export function useIsAdmin(): boolean {
  return useLogin().user.role === "admin";
}
