import type WebSocket from 'ws';
import type { Session } from './session.ts';
import { liveSocket, type SocketOptions } from './socket.ts';

/** A contact's presence: once per subscribed contact at (re)subscription, then on every change. */
export interface PresenceUpdate {
  username: string;
  online: boolean;
  /** When this state began (RFC 3339); null for a contact never seen online. */
  since: string | null;
}

export type PresenceOptions = SocketOptions;

/** The iterator of `watchPresence`, whose set of names can be replaced while it runs. */
export interface PresenceWatch extends AsyncGenerator<PresenceUpdate> {
  /** Replaces the watched names (at most 500; an empty list stops updates but keeps the socket). */
  subscribePresence(usernames: string[]): void;
}

/**
 * Presence of `usernames` over its own live-stream socket (`presence.subscribe`), reconnecting
 * with back-off and subscribing again on every connection, so updates resume after an outage
 * (each reconnect starts with the current state again). Only contacts get updates: a name that is
 * not a contact, or unknown, never appears (read it as offline). Events the socket carries are
 * left unacknowledged in the inbox for `stream()` or `pull()`; this socket makes the device online.
 */
export function watchPresence(s: Session, usernames: string[], opts: PresenceOptions = {}): PresenceWatch {
  let names = [...usernames];
  let ws: WebSocket | null = null;
  const subscribe = () => {
    if (ws?.readyState === 1) ws.send(JSON.stringify({ type: 'presence.subscribe', users: names }));
  };
  const updates = liveSocket<PresenceUpdate>(s, opts, {
    connecting(socket) {
      ws = socket;
      socket.on('open', subscribe);
    },
    frame(f, emit) {
      if (f.type !== 'presence' || typeof f.username !== 'string' || typeof f.online !== 'boolean') return;
      emit({ username: f.username, online: f.online, since: typeof f.since === 'string' ? f.since : null });
    },
    // 1008: the server refused our subscribe frame (e.g. > 500 names); retrying would not help.
    refused: (code, reason) =>
      code === 1008 ? new Error(`presence subscription refused: ${reason}`) : undefined,
  });
  return Object.assign(updates, {
    subscribePresence(next: string[]) {
      names = [...next];
      subscribe();
    },
  });
}
