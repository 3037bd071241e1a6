// The page's one Socket.IO connection: authenticated with the login's token, in the
// organization's room. It reconnects by itself; on every reconnect `onResync` handlers run so
// each screen fetches again what it may have missed while offline.
import { useEffect, useState } from "preact/hooks";
import { io, type Socket } from "socket.io-client";

type Handler = (data: any) => void;

class Realtime {
  private socket: Socket | null = null;
  private handlers = new Map<string, Set<Handler>>();
  private stateListeners = new Set<(state: Realtime["state"]) => void>();
  private resyncs = new Set<() => void>();
  private everConnected = false;
  // "lost" once a connection failed or dropped: the page says so until it is back.
  state: "connecting" | "online" | "lost" = "connecting";
  onRevoked: () => void = () => {};

  start(token: string): void {
    this.stop();
    const socket = io({ path: "/socket.io", auth: { token }, transports: ["websocket", "polling"] });
    this.socket = socket;
    socket.on("connect", () => {
      this.setState("online");
      if (this.everConnected) this.resyncs.forEach((fn) => fn());
      this.everConnected = true;
    });
    socket.on("disconnect", (reason) => {
      this.setState("lost");
      // The server closed it on purpose (a revoked token): no reconnect, log out.
      if (reason === "io server disconnect") this.onRevoked();
    });
    socket.on("connect_error", () => this.setState("lost"));
    socket.on("access_revoked", () => this.onRevoked());
    socket.onAny((event: string, data: unknown) => {
      this.handlers.get(event)?.forEach((fn) => fn(data));
    });
  }

  stop(): void {
    this.socket?.removeAllListeners();
    this.socket?.disconnect();
    this.socket = null;
    this.everConnected = false;
    this.setState("connecting");
  }

  on(event: string, handler: Handler): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  onResync(handler: () => void): () => void {
    this.resyncs.add(handler);
    return () => this.resyncs.delete(handler);
  }

  onState(listener: (state: Realtime["state"]) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  private setState(state: Realtime["state"]): void {
    if (this.state === state) return;
    this.state = state;
    this.stateListeners.forEach((fn) => fn(state));
  }
}

export const realtime = new Realtime();

// Subscribes `handler` to a server event for the component's life.
export function useEvent(event: string, handler: Handler, deps: unknown[] = []): void {
  useEffect(() => realtime.on(event, handler), deps);
}

export function useResync(handler: () => void, deps: unknown[] = []): void {
  useEffect(() => realtime.onResync(handler), deps);
}

export function useSocketState(): Realtime["state"] {
  const [state, setState] = useState(realtime.state);
  useEffect(() => realtime.onState(setState), []);
  return state;
}
