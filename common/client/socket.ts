import { setTimeout as sleep } from 'node:timers/promises';
import type WebSocket from 'ws';
import { ApiError } from './http.ts';
import type { Session } from './session.ts';

export interface SocketOptions {
  /** Stops the iterator (it then ends normally). */
  signal?: AbortSignal;
  /** Reconnect back-off bounds in ms (default 250 .. 5000). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told about connection changes, e.g. to show "reconnecting…". */
  onState?: (state: 'open' | 'closed', err?: Error) => void;
}

/** What a live-stream iterator makes of its socket. */
export interface SocketHandlers<T> {
  /** A new connection, not open yet: keep it to send frames on, or send a frame when it opens. */
  connecting?(socket: WebSocket): void;
  /** One frame from the server; `emit` hands an item to the iterator. */
  frame(frame: Record<string, unknown>, emit: (item: T) => void): void;
  /** The server closed the socket: an Error means retrying would not help (the iterator throws it). */
  refused?(code: number, reason: string): Error | undefined;
  /** Every item emitted so far was taken, and the iterator waits for more. */
  idle?(): void;
}

/**
 * The items `handlers` make of the frames of `/api/stream`, over one connection at a time that
 * reconnects with jittered back-off (reset after a connection that lasted 10 s) until the
 * iterator is left, `signal` aborts, or the server refuses: 401/403/404 at the upgrade, or what
 * `refused` says of a close. A refusal is thrown once the items before it were taken.
 */
export async function* liveSocket<T>(
  s: Session,
  opts: SocketOptions,
  handlers: SocketHandlers<T>,
): AsyncGenerator<T> {
  const queue: T[] = [];
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
  // Loaded here, not at import: a CLI command that never streams starts faster without it.
  const { default: WebSocketImpl } = await import('ws');
  const emit = (item: T) => {
    queue.push(item);
    notify();
  };

  // One connection at a time; resolves when it closes.
  const connect = () =>
    new Promise<void>((resolve) => {
      const socket = new WebSocketImpl(s.http.wsUrl('/api/stream'), {
        headers: { authorization: `Bearer ${s.http.token ?? ''}`, 'user-agent': s.http.userAgent },
        rejectUnauthorized: !s.http.insecure,
        ...(s.http.ca && { ca: s.http.ca }),
        handshakeTimeout: 10_000,
      });
      current = socket;
      handlers.connecting?.(socket);
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
        let frame: unknown;
        try {
          frame = JSON.parse(String(data));
        } catch {
          return;
        }
        if (frame && typeof frame === 'object') handlers.frame(frame as Record<string, unknown>, emit);
      });
      socket.on('error', () => {});
      socket.on('close', (code, reason) => {
        fatal ??= handlers.refused?.(code, reason.toString()) ?? null;
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
      if (queue.length) {
        yield queue.shift() as T;
        continue;
      }
      if (fatal) throw fatal;
      handlers.idle?.();
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
