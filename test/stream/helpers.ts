import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import type { Call } from '../helpers/http.ts';
import { startListener, type TestListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf } from '../helpers/people.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary event JSON and assert on it
export type Ev = any;

/** Fast heartbeats, pings and expiry so presence and dead-peer tests finish in seconds. */
export const FAST: Record<string, string> = {
  PRESENCE_HEARTBEAT_MS: '200',
  PRESENCE_EXPIRY_MS: '1500',
  STREAM_PING_INTERVAL_MS: '300',
  STREAM_AUTH_TIMEOUT_MS: '500',
  OUTBOX_SWEEP_MS: '200',
};

export type RelayedListener = TestListener;

/**
 * An in-process listener with the outbox relay running (as listener/main.ts runs it), so sends
 * reach RabbitMQ and from there the live exchange that every listener's stream binds to.
 */
export function startRelayedListener(overrides: Record<string, string> = {}): Promise<RelayedListener> {
  return startListener({ ...FAST, ...overrides }, { relay: true });
}

/** Polls `check` until it returns true; fails after `ms` (a bound, not a timing assertion). */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 10_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for: ${what}`);
}

export interface Closed {
  code: number;
  reason: string;
}

/** A test client socket that records every frame and how it closed. */
export class StreamClient {
  readonly ws: WebSocket;
  readonly frames: Ev[] = [];
  readonly closed: Promise<Closed>;
  readonly opened: Promise<void>;
  /** Set when the upgrade was answered with a plain HTTP response instead (status and body). */
  refusal: { status: number; body: string } | undefined;

  constructor(
    baseUrl: string,
    opts: { token?: string; headers?: Record<string, string>; ca?: Buffer; localAddress?: string } = {},
  ) {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    // Through nginx: wss with the stack's own certificate (issued for localhost).
    const tls = opts.ca ? { ca: opts.ca, servername: 'localhost' } : {};
    const local = opts.localAddress ? { localAddress: opts.localAddress } : {};
    this.ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/stream`, { headers, ...tls, ...local });
    this.ws.on('message', (data) => this.frames.push(JSON.parse(String(data))));
    this.ws.on('error', () => {});
    this.ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        this.refusal = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() };
        this.ws.terminate();
      });
    });
    this.closed = new Promise((resolve) =>
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    this.opened = once(this.ws, 'open').then(() => undefined);
    this.opened.catch(() => {}); // a refused upgrade rejects it; only tests that await it care
  }

  get events(): Ev[] {
    return this.frames.filter((f) => f.type === 'event').map((f) => f.event);
  }

  /** Waits until at least `n` events arrived and returns them all. */
  async waitEvents(n: number, ms = 10_000): Promise<Ev[]> {
    await eventually(`${n} stream events (have ${this.events.length})`, () => this.events.length >= n, ms);
    return this.events;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  close(): Promise<Closed> {
    this.ws.close();
    return this.closed;
  }
}

/** Sends `text` from `from` to `to`'s devices (and `from`'s other devices given), expecting 201. */
export async function sendText(call: Call, from: Device, to: Device[], text: string): Promise<string> {
  const res = await call('POST', '/api/messages', {
    token: from.token,
    body: { to: to[0]?.username, envelopes: envelopesFor(from, to.map(keyOf), text) },
  });
  if (res.status !== 201) throw new Error(`send failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.message_id as string;
}

export async function presence(call: Call, asker: Device, users: string[]): Promise<string[]> {
  const res = await call('GET', `/api/presence?users=${users.join(',')}`, { token: asker.token });
  if (res.status !== 200) throw new Error(`presence failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.online as string[];
}

const run = promisify(execFile);

/** Has RabbitMQ itself close the AMQP connection named `name` (a real broker-side drop). Returns how many. */
export async function dropBrokerConnection(name: string): Promise<number> {
  const { stdout } = await run('rabbitmqctl', ['list_connections', '-q', 'pid', 'client_properties'], {
    timeout: 30_000,
  });
  const pids = stdout
    .split('\n')
    .filter((line) => line.includes(`{"connection_name","${name}"}`))
    .map((line) => line.split('\t')[0] ?? '');
  for (const pid of pids) {
    await run('rabbitmqctl', ['close_connection', pid, 'test: dropping the connection'], { timeout: 30_000 });
  }
  return pids.length;
}
