import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import type { Logger } from '../../common/log.ts';
import { type PresenceChange, parsePresenceChange, wokenDevices } from '../../common/queue/messages.ts';

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;

/** AMQP heartbeats notice a silently dead broker in ~2 beats instead of the server's 60 s default. */
function withHeartbeat(url: string): string {
  return /[?&]heartbeat=/.test(url) ? url : `${url}${url.includes('?') ? '&' : '?'}heartbeat=15`;
}

export interface LiveBusOptions {
  url: string;
  /** The live topic exchange (`topology(config).live`); see the contract in common/queue/messages.ts. */
  exchange: string;
  /** The fanout exchange of cache invalidations (`topology(config).invalidations`). */
  invalidations: string;
  /** The presence topic exchange (`topology(config).presence`); see the PRESENCE CONTRACT. */
  presence: string;
  /** Shown by the broker (`rabbitmqctl list_connections client_properties`), e.g. `live host:pid`. */
  name: string;
  log: Logger;
  /** A wake-up for a device with a socket on this listener: something new may be in its inbox. */
  onWake(deviceId: string): void;
  /** (Re)connected and re-bound: wakes sent while we were away are lost, so every socket re-reads. */
  onConnected(): void;
  /** The connection is gone: invalidations may be missed from now on. */
  onDisconnected(): void;
  /** Another listener (or this one) changed this user's sessions or devices. */
  onInvalidate(userId: string): void;
  /** A presence transition of a username watched here (contacts not checked yet). */
  onPresence(change: PresenceChange): void;
}

/**
 * This listener's subscription to live wake-ups. One exclusive, auto-delete queue per process is
 * bound to the live topic exchange with one binding per device that has a socket here, so the
 * relay's `{device_id, seq}` messages (routing key = device id) reach whichever listener holds the
 * device's socket, and nothing else. Wakes are hints, not data: the inbox is the source of truth,
 * so they are consumed without acks and losing one only delays an event until the next re-read.
 */
export class LiveBus {
  private readonly opts: LiveBusOptions;
  /** Sockets per device on this listener; a device is bound while its count is positive. */
  private readonly devices = new Map<string, number>();
  /** Presence subscriptions per username on this listener; bound to the presence exchange while positive. */
  private readonly watched = new Map<string, number>();
  private model: ChannelModel | undefined;
  private channel: ConfirmChannel | undefined;
  private queue: string | undefined;
  private closed = false;
  private connecting = false;
  private retryMs = RETRY_MIN_MS;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: LiveBusOptions) {
    this.opts = opts;
  }

  /** Connects in the background and keeps reconnecting until closed; never throws. */
  start(): void {
    void this.connect();
  }

  get connected(): boolean {
    return this.queue !== undefined;
  }

  /** Starts routing this device's wake-ups here; resolves once the binding is in place (or the bus is down). */
  add(deviceId: string): Promise<void> {
    const n = this.devices.get(deviceId) ?? 0;
    this.devices.set(deviceId, n + 1);
    // Channel operations run in the order they are issued, so a bind issued after an unbind wins;
    // a second socket of the device waits for a bind still in flight by issuing its own.
    return this.bind(this.opts.exchange, deviceId, true);
  }

  remove(deviceId: string): void {
    if (release(this.devices, deviceId)) void this.bind(this.opts.exchange, deviceId, false);
  }

  /** Starts routing this username's presence transitions here; resolves once bound (or the bus is down). */
  watch(username: string): Promise<void> {
    this.watched.set(username, (this.watched.get(username) ?? 0) + 1);
    return this.bind(this.opts.presence, username, true);
  }

  unwatch(username: string): void {
    if (release(this.watched, username)) void this.bind(this.opts.presence, username, false);
  }

  /** Announces a settled transition to the listeners watching the user; resolves once the broker took it. */
  async publishPresence(change: PresenceChange): Promise<void> {
    const { channel } = this;
    if (!channel) throw new Error('live bus is not connected');
    channel.publish(this.opts.presence, change.username, Buffer.from(JSON.stringify(change)), {
      persistent: false,
      contentType: 'application/json',
    });
    await channel.waitForConfirms();
  }

  /**
   * Tells every listener (this one included) to drop what it cached about this user; resolves once
   * the broker routed it to every bound queue (a confirm). Throws while disconnected.
   */
  async announce(userId: string): Promise<void> {
    const { channel } = this;
    if (!channel) throw new Error('live bus is not connected');
    channel.publish(this.opts.invalidations, '', Buffer.from(JSON.stringify({ user_id: userId })), {
      persistent: false,
      contentType: 'application/json',
    });
    await channel.waitForConfirms();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const model = this.model;
    this.model = undefined;
    this.channel = undefined;
    this.queue = undefined;
    await model?.close().catch(() => {});
  }

  private async bind(exchange: string, key: string, on: boolean): Promise<void> {
    const { channel, queue } = this;
    if (!channel || !queue) return; // bound on (re)connect, which then wakes every socket
    try {
      if (on) await channel.bindQueue(queue, exchange, key);
      else await channel.unbindQueue(queue, exchange, key);
    } catch (err) {
      // A failed binding operation closes the channel; the close handler reconnects and re-binds.
      this.opts.log.warn({ err, exchange, routing_key: key }, 'live binding failed');
    }
  }

  private async connect(): Promise<void> {
    this.timer = undefined;
    if (this.closed) return;
    this.connecting = true;
    let model: ChannelModel | undefined;
    try {
      model = await amqp.connect(withHeartbeat(this.opts.url), {
        timeout: 5_000,
        noDelay: true,
        clientProperties: { connection_name: this.opts.name },
      });
      const m = model;
      m.on('error', () => {}); // 'close' follows and carries the handling
      m.on('close', () => this.drop(m));
      const channel = await m.createConfirmChannel();
      channel.on('error', () => {});
      channel.on('close', () => this.drop(m));
      await channel.assertExchange(this.opts.exchange, 'topic', { durable: true });
      await channel.assertExchange(this.opts.invalidations, 'fanout', { durable: true });
      await channel.assertExchange(this.opts.presence, 'topic', { durable: true });
      const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
      await channel.bindQueue(queue, this.opts.invalidations, '');
      await channel.consume(queue, (msg) => this.deliver(msg), { noAck: true });
      if (this.closed) throw new Error('closed');
      this.model = m;
      this.channel = channel;
      this.queue = queue;
      this.connecting = false;
      await Promise.all([
        ...[...this.devices.keys()].map((d) => channel.bindQueue(queue, this.opts.exchange, d)),
        ...[...this.watched.keys()].map((u) => channel.bindQueue(queue, this.opts.presence, u)),
      ]);
      this.retryMs = RETRY_MIN_MS;
      this.opts.log.info({ devices: this.devices.size, watched: this.watched.size }, 'live bus connected');
      this.opts.onConnected();
    } catch (err) {
      this.connecting = false;
      if (!this.closed) this.opts.log.warn({ err, retry_ms: this.retryMs }, 'live bus connect failed');
      this.drop(model);
    }
  }

  /** The connection or its channel went away (reported up to twice): forget it and reconnect once. */
  private drop(model: ChannelModel | undefined): void {
    if (model !== undefined && this.model === model) {
      this.opts.log.warn('live bus connection lost');
      this.model = undefined;
      this.channel = undefined;
      this.queue = undefined;
      this.opts.onDisconnected();
    } else if (this.model !== undefined) {
      return; // a stale connection; the current one is healthy
    }
    model?.close().catch(() => {});
    if (this.closed || this.connecting || this.timer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.timer = setTimeout(() => void this.connect(), delay);
    this.timer.unref();
  }

  private deliver(msg: ConsumeMessage | null): void {
    if (!msg) return; // consumer cancelled: the channel closes and we reconnect
    if (msg.fields.exchange === this.opts.invalidations) {
      try {
        const { user_id } = JSON.parse(msg.content.toString()) as { user_id?: unknown };
        if (typeof user_id === 'string') this.opts.onInvalidate(user_id);
      } catch {}
      return;
    }
    if (msg.fields.exchange === this.opts.presence) {
      const change = parsePresenceChange(msg.content);
      if (change && this.watched.has(change.username)) this.opts.onPresence(change);
      return;
    }
    for (const deviceId of wokenDevices(msg.content)) {
      if (this.devices.has(deviceId)) this.opts.onWake(deviceId);
    }
  }
}

/** Drops one reference to `key`; true when it was the last one (time to unbind). */
function release(counts: Map<string, number>, key: string): boolean {
  const n = counts.get(key) ?? 0;
  if (n > 1) {
    counts.set(key, n - 1);
    return false;
  }
  counts.delete(key);
  return n === 1;
}
