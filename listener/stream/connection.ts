import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WebSocket } from 'ws';
import type { Logger } from '../../common/log.ts';
import { ackInbox, readInbox } from '../db/inbox.ts';
import type { Deps, Identity } from '../deps.ts';
import { isUnavailableError } from '../errors.ts';
import { identify } from '../middleware/auth.ts';
import { CLOSE, eventFrame, parseClientFrame } from './frames.ts';

/** Events read from the inbox per query; one page is the most a socket holds outside ws's buffer. */
const PAGE = 50;
/** Client frames received but not yet handled before the socket stops being read. */
const MAX_PENDING_FRAMES = 8;

export interface StreamHooks {
  /** The socket authenticated: register it (bus binding, presence) before the backlog is read. */
  opened(conn: StreamConnection): Promise<void>;
  /** The socket is gone (authenticated or not). */
  closed(conn: StreamConnection): void;
  /** A presence.subscribe frame: replaces this socket's presence subscription. */
  subscribe(conn: StreamConnection, usernames: string[]): Promise<void>;
}

/**
 * One live-stream socket. Sending is a single loop per socket that reads the inbox after the last
 * seq sent, so backlog and live events share one path: wake-ups only say "look again", arrive in
 * any order, and coalesce while a read is running. Client frames are handled strictly in order.
 */
export class StreamConnection {
  readonly id = randomUUID();
  identity: Identity | null = null;
  /** Answered the last ping (or sent something) since the previous ping round. */
  alive = true;
  private lastSent = 0;
  private reading = false;
  private dirty = false;
  private lastFlush: Promise<void> = Promise.resolve();
  private inbound: Promise<void> = Promise.resolve();
  private pending = 0;
  private readonly ws: WebSocket;
  private readonly deps: Deps;
  private readonly hooks: StreamHooks;
  private readonly client: { ip: string | null; userAgent: string | null; requestId?: string };
  private log: Logger;
  private authTimer: NodeJS.Timeout | undefined;

  constructor(
    ws: WebSocket,
    deps: Deps,
    hooks: StreamHooks,
    client: { ip: string | null; userAgent: string | null; requestId?: string },
  ) {
    this.ws = ws;
    this.deps = deps;
    this.hooks = hooks;
    this.client = client;
    this.log = deps.log.child({ stream_id: this.id, client_ip: client.ip, req_id: client.requestId });
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('message', (data: Buffer, isBinary) => {
      this.alive = true;
      // Frames are handled one at a time; a client sending faster than that is made to wait
      // (TCP backpressure) instead of queueing without bound here.
      if (++this.pending >= MAX_PENDING_FRAMES) ws.pause();
      this.inbound = this.inbound
        .then(() => this.receive(data, isBinary))
        .finally(() => {
          if (--this.pending < MAX_PENDING_FRAMES && ws.isPaused) ws.resume();
        });
    });
    ws.on('error', (err) => this.log.debug({ err }, 'stream socket error'));
    ws.on('close', () => {
      clearTimeout(this.authTimer);
      this.hooks.closed(this);
    });
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** The authenticated user (a presence subscriber); '' before authentication. */
  get userId(): string {
    return this.identity?.userId ?? '';
  }

  /**
   * Queues a presence frame. Small and not stored, so it skips the inbox loop's wait; a socket whose
   * send buffer is already past the cap is closed as too slow, as the loop would close it.
   */
  sendPresence(frame: string): void {
    if (!this.open) return;
    if (this.ws.bufferedAmount > this.deps.config.STREAM_MAX_BUFFERED_BYTES) {
      this.close(CLOSE.tooSlow, 'client too slow: send buffer full', 1_000);
      return;
    }
    this.ws.send(frame);
  }

  /** Authenticated by header already, or waits for the first frame to be `{"type":"auth"}`. */
  start(identity: Identity | null): void {
    if (identity) {
      void this.begin(identity);
      return;
    }
    this.authTimer = setTimeout(
      () => this.close(CLOSE.unauthorized, 'authentication timeout'),
      this.deps.config.STREAM_AUTH_TIMEOUT_MS,
    );
  }

  ping(): void {
    if (!this.open) return;
    if (!this.alive) {
      this.log.info('stream peer unresponsive, dropping');
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  /** Closes with a code and reason; a peer that does not complete the close handshake within `graceMs` is cut off. */
  close(code: number, reason: string, graceMs = 5_000): void {
    if (this.ws.readyState === this.ws.CLOSED || this.ws.readyState === this.ws.CLOSING) return;
    this.log.info({ code, reason }, 'closing stream');
    try {
      this.ws.close(code, reason);
    } catch (err) {
      // Only an invalid code or an over-long reason throws; never let that take the process down.
      this.log.error({ err }, 'stream close failed');
      this.ws.terminate();
      return;
    }
    setTimeout(() => this.ws.terminate(), graceMs).unref();
  }

  /** Something may be new in the inbox: read it (now, or once more after the read in progress). */
  wake(): void {
    if (!this.identity || !this.open) return;
    if (this.reading) {
      this.dirty = true;
      return;
    }
    this.reading = true;
    void this.pump().finally(() => {
      this.reading = false;
    });
  }

  private async begin(identity: Identity): Promise<void> {
    clearTimeout(this.authTimer);
    this.identity = identity;
    this.log = this.log.child({ user_id: identity.userId, device_id: identity.deviceId });
    try {
      await this.hooks.opened(this);
    } catch (err) {
      this.failed(err);
      return;
    }
    this.log.info('stream opened');
    this.wake();
  }

  private async pump(): Promise<void> {
    const { db } = this.deps;
    const deviceId = this.identity?.deviceId ?? '';
    try {
      do {
        this.dirty = false;
        let more = true;
        while (more && this.open) {
          const page = await readInbox(db, deviceId, this.lastSent, PAGE);
          for (const body of page.bodies) if (!(await this.send(eventFrame(body)))) return;
          if (page.lastSeq !== null) this.lastSent = page.lastSeq;
          more = page.hasMore;
        }
      } while (this.dirty && this.open);
    } catch (err) {
      this.failed(err);
    }
  }

  /**
   * Queues one frame. Past STREAM_MAX_BUFFERED_BYTES it first waits for what was queued to reach
   * the kernel; a client that does not drain it within STREAM_SEND_TIMEOUT_MS is closed, so a
   * socket never holds more than the cap plus one frame.
   */
  private async send(frame: string): Promise<boolean> {
    const { STREAM_MAX_BUFFERED_BYTES: cap, STREAM_SEND_TIMEOUT_MS: timeout } = this.deps.config;
    if (this.ws.bufferedAmount > cap) {
      const abort = new AbortController();
      const drained = await Promise.race([
        this.lastFlush.then(() => true),
        sleep(timeout, false, { signal: abort.signal }).catch(() => false),
      ]);
      abort.abort();
      if (!drained || this.ws.bufferedAmount > cap) {
        // The close frame queues behind the unread bytes; do not wait long for a reader that is not reading.
        this.close(CLOSE.tooSlow, 'client too slow: send buffer full', 1_000);
        return false;
      }
    }
    if (!this.open) return false;
    this.lastFlush = new Promise((resolve) => this.ws.send(frame, () => resolve()));
    return true;
  }

  private async receive(data: Buffer, isBinary: boolean): Promise<void> {
    if (!this.open) return;
    const parsed = parseClientFrame(data, isBinary);
    if (!parsed.ok) {
      this.close(parsed.code, parsed.reason);
      return;
    }
    const { frame } = parsed;
    try {
      if (frame.type === 'auth') {
        if (this.identity) return this.close(CLOSE.policy, 'already authenticated');
        const identity = await identify(this.deps, frame.token, this.client);
        if (!identity) return this.close(CLOSE.unauthorized, 'invalid or expired token');
        await this.begin(identity);
        return;
      }
      if (!this.identity) return this.close(CLOSE.policy, 'authenticate first');
      if (frame.type === 'presence.subscribe') return await this.hooks.subscribe(this, frame.users);
      await ackInbox(this.deps.db, this.identity.deviceId, frame.up_to);
    } catch (err) {
      this.failed(err);
    }
  }

  /** A backing service failed mid-stream: the client reconnects and resumes from its inbox. */
  private failed(err: unknown): void {
    if (isUnavailableError(err)) {
      this.log.warn({ err }, 'stream backing service unavailable');
      this.close(CLOSE.tryAgainLater, 'service unavailable, reconnect later');
    } else {
      this.log.error({ err }, 'stream failed');
      this.close(CLOSE.internal, 'internal error');
    }
  }
}
