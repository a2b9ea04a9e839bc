import type { ConsumeMessage } from 'amqplib';
import type { Logger } from '../../common/log.ts';
import type { Broker, Subscription } from '../../common/queue/broker.ts';
import {
  invalidationPublication,
  type PresenceChange,
  parseInvalidation,
  parseLiveSignal,
  parsePresenceChange,
  presencePublication,
} from '../../common/queue/messages.ts';

export interface LiveBusOptions {
  /** The listener's broker connection; exchange names come from its topology. */
  broker: Broker;
  log: Logger;
  /** A wake-up for a device with a socket on this listener: something new may be in its inbox. */
  onWake(deviceId: string): void;
  /** (Re)subscribed and re-bound: wakes sent while we were away are lost, so every socket re-reads. */
  onConnected(): void;
  /** The subscription is gone: invalidations may be missed from now on. */
  onDisconnected(): void;
  /** Another listener (or this one) changed this user's sessions or devices. */
  onInvalidate(userId: string): void;
  /** A presence transition of a username watched here (contacts not checked yet). */
  onPresence(change: PresenceChange): void;
}

/**
 * This listener's subscription to live wake-ups, presence transitions and cache invalidations
 * (the contracts in common/queue/messages.ts): one broker subscription (an exclusive queue of this
 * process) bound to the invalidations fanout, and per device with a socket here to the live
 * exchange, per watched username to the presence exchange, so each message reaches only the
 * listeners that serve it. Wakes are hints, not data: the inbox is the source of truth, so losing
 * one only delays an event until the next re-read (every socket re-reads on onConnected).
 */
export class LiveBus {
  private readonly opts: LiveBusOptions;
  /** Sockets per device on this listener; a device is bound while its count is positive. */
  private readonly devices = new Map<string, number>();
  /** Presence subscriptions per username on this listener; bound to the presence exchange while positive. */
  private readonly watched = new Map<string, number>();
  private subscription: Subscription | undefined;

  constructor(opts: LiveBusOptions) {
    this.opts = opts;
  }

  /** Subscribes in the background, again after every reconnect, until closed; never throws. */
  start(): void {
    const { broker, log } = this.opts;
    this.subscription = broker.subscribe({
      bindings: [{ exchange: broker.topology.invalidations, routingKey: '' }],
      onMessage: (msg) => this.deliver(msg),
      onReady: () => {
        log.info({ devices: this.devices.size, watched: this.watched.size }, 'live bus connected');
        this.opts.onConnected();
      },
      onLost: () => {
        log.warn('live bus connection lost');
        this.opts.onDisconnected();
      },
    });
  }

  /** Starts routing this device's wake-ups here; resolves once the binding is in place (or the bus is down). */
  add(deviceId: string): Promise<void> {
    const n = this.devices.get(deviceId) ?? 0;
    this.devices.set(deviceId, n + 1);
    // A second socket of the device waits for a bind still in flight by issuing its own.
    return this.subscription?.bind(this.opts.broker.topology.live, deviceId) ?? Promise.resolve();
  }

  remove(deviceId: string): void {
    if (release(this.devices, deviceId))
      void this.subscription?.unbind(this.opts.broker.topology.live, deviceId);
  }

  /** Starts routing this username's presence transitions here; resolves once bound (or the bus is down). */
  watch(username: string): Promise<void> {
    this.watched.set(username, (this.watched.get(username) ?? 0) + 1);
    return this.subscription?.bind(this.opts.broker.topology.presence, username) ?? Promise.resolve();
  }

  unwatch(username: string): void {
    if (release(this.watched, username))
      void this.subscription?.unbind(this.opts.broker.topology.presence, username);
  }

  /** Announces a settled transition to the listeners watching the user; resolves once the broker took it. */
  publishPresence(change: PresenceChange): Promise<void> {
    return this.opts.broker.publish([presencePublication(this.opts.broker.topology, change)]);
  }

  /**
   * Tells every listener (this one included) to drop what it cached about this user; resolves once
   * the broker routed it to every bound queue (a confirm). Throws while disconnected.
   */
  announce(userId: string): Promise<void> {
    return this.opts.broker.publish([invalidationPublication(this.opts.broker.topology, userId)]);
  }

  async close(): Promise<void> {
    const sub = this.subscription;
    this.subscription = undefined;
    await sub?.stop();
  }

  private deliver(msg: ConsumeMessage): void {
    const { live, presence, invalidations } = this.opts.broker.topology;
    const exchange = msg.fields.exchange;
    if (exchange === invalidations) {
      const inv = parseInvalidation(msg.content);
      if (inv) this.opts.onInvalidate(inv.user_id);
    } else if (exchange === presence) {
      const change = parsePresenceChange(msg.content);
      if (change && this.watched.has(change.username)) this.opts.onPresence(change);
    } else if (exchange === live) {
      for (const [deviceId] of parseLiveSignal(msg.content)?.devices ?? []) {
        if (this.devices.has(deviceId)) this.opts.onWake(deviceId);
      }
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
