import { setTimeout as sleep } from 'node:timers/promises';
import type WebSocket from 'ws';
import { ApiError } from './http.ts';
import type { Session } from './session.ts';

/** A contact's presence: once per subscribed contact at (re)subscription, then on every change. */
export interface PresenceUpdate {
  username: string;
  online: boolean;
  /** When this state began (RFC 3339); null for a contact never seen online. */
  since: string | null;
}

export interface PresenceOptions {
  /** Stops watching (the iterator then ends normally). */
  signal?: AbortSignal;
  /** Reconnect back-off bounds in ms (default 250 .. 5000). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  onState?: (state: 'open' | 'closed', err?: Error) => void;
}

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
  const generator = run(s, opts, (socket) => {
    ws = socket;
    socket.on('open', subscribe);
  });
  return Object.assign(generator, {
    subscribePresence(next: string[]) {
      names = [...next];
      subscribe();
    },
  });
}

async function* run(
  s: Session,
  opts: PresenceOptions,
  attach: (socket: WebSocket) => void,
): AsyncGenerator<PresenceUpdate> {
  const queue: PresenceUpdate[] = [];
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  let fatal: Error | null = null;
  let stopped = false;
  let current: WebSocket | null = null;
  const stop = () => {
    stopped = true;
    current?.close();
    notify();
  };
  opts.signal?.addEventListener('abort', stop, { once: true });
  const { default: WebSocketImpl } = await import('ws');

  const connect = () =>
    new Promise<void>((resolve) => {
      const socket = new WebSocketImpl(s.http.wsUrl('/api/stream'), {
        headers: { authorization: `Bearer ${s.http.token ?? ''}`, 'user-agent': s.http.userAgent },
        rejectUnauthorized: !s.http.insecure,
        ...(s.http.ca && { ca: s.http.ca }),
        handshakeTimeout: 10_000,
      });
      current = socket;
      attach(socket);
      socket.on('open', () => opts.onState?.('open'));
      socket.on('unexpected-response', (_req, res) => {
        if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 404)
          fatal = new ApiError(res.statusCode, {
            error: 'stream_refused',
            message: `HTTP ${res.statusCode}`,
          });
        res.resume();
        socket.terminate();
      });
      socket.on('message', (data) => {
        try {
          const f = JSON.parse(String(data)) as { type?: string } & Partial<PresenceUpdate>;
          if (f.type !== 'presence' || typeof f.username !== 'string' || typeof f.online !== 'boolean')
            return;
          queue.push({ username: f.username, online: f.online, since: f.since ?? null });
          notify();
        } catch {}
      });
      socket.on('error', () => {});
      socket.on('close', (code, reason) => {
        // 1008: the server refused our subscribe frame (e.g. > 500 names); retrying would not help.
        if (code === 1008) fatal = new Error(`presence subscription refused: ${reason.toString()}`);
        opts.onState?.('closed');
        notify();
        resolve();
      });
    });

  const loop = (async () => {
    let backoff = opts.minBackoffMs ?? 250;
    while (!stopped && !fatal) {
      const started = Date.now();
      await connect();
      if (stopped || fatal) break;
      if (Date.now() - started > 10_000) backoff = opts.minBackoffMs ?? 250;
      await sleep(backoff * (0.5 + Math.random() / 2));
      backoff = Math.min(backoff * 2, opts.maxBackoffMs ?? 5_000);
    }
    notify();
  })();

  try {
    while (!stopped) {
      const next = queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (fatal) throw fatal;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stopped = true;
    opts.signal?.removeEventListener('abort', stop);
    (current as WebSocket | null)?.close();
    await loop;
  }
}
