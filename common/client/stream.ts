import { setTimeout as sleep } from 'node:timers/promises';
import type WebSocket from 'ws';
import { ApiError } from './http.ts';
import { ack, openEvent, type Received } from './messages.ts';
import type { Session } from './session.ts';
import type { Event } from './types.ts';

export interface StreamOptions {
  /** Stops the stream (the iterator then ends normally). */
  signal?: AbortSignal;
  /** Acknowledge events once the loop body has handled them (default true). */
  autoAck?: boolean;
  /** Reconnect back-off bounds in ms (default 250 .. 5000). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told about connection changes, e.g. to show "reconnecting…". */
  onState?: (state: 'open' | 'closed', err?: Error) => void;
}

/** Acks are batched: at the latest every this many handled events, and whenever the queue runs dry. */
const ACK_EVERY = 100;

/**
 * Live events of this device over the WebSocket stream, decrypted. The server starts every
 * connection with the backlog from the inbox, so after a reconnect nothing is lost; events
 * already handled (seq at or below the last one seen) are skipped. An event is acknowledged
 * once the loop body has handled it: when the body returns, or when it leaves the loop (`break`,
 * `return`, a throw) — the event in hand when the loop is left counts as handled and does not
 * come again (acked over HTTP before the iterator ends). Only a process that dies inside the
 * body gets that event again. For a body that may fail, catch inside it, or pass
 * `autoAck: false` and `ack(seq)` yourself.
 */
export async function* stream(s: Session, opts: StreamOptions = {}): AsyncGenerator<Received> {
  const queue: Event[] = [];
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  let fatal: Error | null = null;
  let ws: WebSocket | null = null;
  let lastSeen = 0;
  /** The event the loop body is handling; counts as handled if the loop is left while it runs. */
  let inHand = 0;
  let acked = 0;
  // Loaded here, not at import: a CLI command that never streams starts faster without it.
  const { default: WebSocketImpl } = await import('ws');
  let stopped = false;
  const stop = () => {
    stopped = true;
    notify();
  };
  opts.signal?.addEventListener('abort', stop, { once: true });

  const sendAck = () => {
    if (opts.autoAck === false || lastSeen <= acked || ws?.readyState !== WebSocketImpl.OPEN) return;
    ws.send(JSON.stringify({ type: 'ack', up_to: lastSeen }));
    acked = lastSeen;
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
      ws = socket;
      socket.on('open', () => opts.onState?.('open'));
      socket.on('unexpected-response', (_req, res) => {
        if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 404) {
          fatal = new ApiError(res.statusCode, {
            error: 'stream_refused',
            message: `HTTP ${res.statusCode}`,
          });
        }
        res.resume();
        socket.terminate();
      });
      socket.on('message', (data) => {
        let frame: { type?: string; event?: Event };
        try {
          frame = JSON.parse(String(data));
        } catch {
          return;
        }
        if (frame.type === 'event' && frame.event && frame.event.seq > lastSeen) {
          const lastQueued = queue.at(-1)?.seq ?? lastSeen;
          if (frame.event.seq > lastQueued) queue.push(frame.event);
          notify();
        }
      });
      socket.on('error', () => {});
      socket.on('close', () => {
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
    let sinceAck = 0;
    while (!stopped) {
      const next = queue.shift();
      if (next) {
        inHand = next.seq;
        yield openEvent(s, next);
        lastSeen = Math.max(lastSeen, next.seq);
        if (++sinceAck >= ACK_EVERY || queue.length === 0) {
          sendAck();
          sinceAck = 0;
        }
        continue;
      }
      if (fatal) throw fatal;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stopped = true;
    lastSeen = Math.max(lastSeen, inHand);
    // The socket may close before the server applied a last ack frame: confirm it over HTTP.
    if (opts.autoAck !== false && lastSeen > 0) await ack(s, lastSeen).catch(() => {});
    opts.signal?.removeEventListener('abort', stop);
    (ws as WebSocket | null)?.close();
    await loop;
  }
}
