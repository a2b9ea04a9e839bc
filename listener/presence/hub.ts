import type { Db } from '../../common/db/index.ts';
import type { Logger } from '../../common/log.ts';
import type { PresenceMetrics } from '../../common/metrics.ts';
import type { PresenceChange } from '../../common/queue/messages.ts';
import { contactsAmong } from './contacts.ts';
import { type PresenceState, visiblePresence } from './state.ts';

/** A socket that subscribed to presence (a StreamConnection). */
export interface Subscriber {
  readonly userId: string;
  sendPresence(frame: string): void;
}

/** Where transitions come from: the listener's live bus (bindings per username). */
export interface PresenceBindings {
  watch(username: string): Promise<void>;
  unwatch(username: string): void;
}

interface Shown {
  online: boolean;
  /** ms since epoch of `since`; a change is applied only when newer (publishers may reorder). */
  at: number;
}

interface Subscription {
  names: Set<string>;
  /** What this subscriber was last told, per contact. */
  shown: Map<string, Shown>;
}

function presenceFrame(username: string, online: boolean, since: string | null): string {
  return JSON.stringify({ type: 'presence', username, online, since });
}

/**
 * The presence subscriptions of this listener's sockets. A subscription binds the listener's live
 * queue to each named user's transitions (whoever announces them, on any listener), answers at
 * once with the state of the names that are contacts (one query), and passes on changes. Every
 * change is checked against the contacts rule when it arrives — one query per change and listener
 * for all of its subscribers of that user — so a contact made or lost since subscribing counts,
 * and nothing is kept in memory shared beyond this process.
 */
export class PresenceHub {
  private readonly subs = new Map<Subscriber, Subscription>();
  private readonly byName = new Map<string, Set<Subscriber>>();
  private readonly db: Db;
  private readonly expiryMs: number;
  private readonly bindings: PresenceBindings;
  private readonly metrics: PresenceMetrics;
  private readonly log: Logger;

  constructor(opts: {
    db: Db;
    expiryMs: number;
    bindings: PresenceBindings;
    metrics: PresenceMetrics;
    log: Logger;
  }) {
    this.db = opts.db;
    this.expiryMs = opts.expiryMs;
    this.bindings = opts.bindings;
    this.metrics = opts.metrics;
    this.log = opts.log;
    this.metrics.subscriptions = () => this.subs.size;
  }

  /** Replaces the subscriber's set (empty: ends it) and sends the state of its contacts among them. */
  async subscribe(sub: Subscriber, usernames: string[]): Promise<void> {
    const names = new Set(usernames);
    const old = this.subs.get(sub)?.names ?? new Set<string>();
    const added = [...names].filter((n) => !old.has(n));
    for (const n of old) if (!names.has(n)) this.forget(sub, n);
    for (const n of added) this.byName.set(n, (this.byName.get(n) ?? new Set()).add(sub));
    if (!names.size) {
      this.subs.delete(sub);
      return;
    }
    const subscription: Subscription = { names, shown: new Map() };
    this.subs.set(sub, subscription);
    // Bound before the state is read: a change from then on is not missed (at worst seen twice).
    await Promise.all(added.map((n) => this.bindings.watch(n)));
    const states = await visiblePresence(this.db, sub.userId, [...names], this.expiryMs);
    if (this.subs.get(sub) !== subscription) return; // replaced or ended meanwhile
    for (const s of states) this.show(sub, subscription, s, true);
  }

  /** The socket closed. */
  drop(sub: Subscriber): void {
    const subscription = this.subs.get(sub);
    if (!subscription) return;
    this.subs.delete(sub);
    for (const n of subscription.names) this.forget(sub, n);
  }

  /** A transition of a watched user arrived from the bus. */
  async changed(change: PresenceChange): Promise<void> {
    this.metrics.changesReceived.inc();
    const watchers = [...(this.byName.get(change.username) ?? [])];
    if (!watchers.length) return;
    const allowed = await contactsAmong(this.db, change.user_id, [...new Set(watchers.map((w) => w.userId))]);
    for (const sub of watchers) {
      const subscription = this.subs.get(sub);
      if (!subscription) continue;
      if (allowed.has(sub.userId)) {
        this.show(sub, subscription, { ...change, userId: change.user_id }, false);
      } else if (subscription.shown.get(change.username)?.online) {
        // No longer a contact: from now on they read as anyone else does, offline.
        subscription.shown.delete(change.username);
        this.send(sub, presenceFrame(change.username, false, null));
      }
    }
  }

  /**
   * The bus reconnected: changes may have been missed. Re-reads every subscription and sends what
   * differs from what its subscriber was told.
   */
  async resync(): Promise<void> {
    for (const [sub, subscription] of this.subs) {
      try {
        const states = await visiblePresence(this.db, sub.userId, [...subscription.names], this.expiryMs);
        if (this.subs.get(sub) !== subscription) continue;
        for (const s of states) this.show(sub, subscription, s, false);
      } catch (err) {
        this.log.warn({ err }, 'presence resync failed');
        return;
      }
    }
  }

  get size(): number {
    return this.subs.size;
  }

  private show(sub: Subscriber, subscription: Subscription, s: PresenceState, always: boolean): void {
    const at = s.since ? Date.parse(s.since) : 0;
    const prev = subscription.shown.get(s.username);
    if (!always && prev && (at < prev.at || (at === prev.at && prev.online === s.online))) return;
    subscription.shown.set(s.username, { online: s.online, at });
    this.send(sub, presenceFrame(s.username, s.online, s.since));
  }

  private send(sub: Subscriber, frame: string): void {
    this.metrics.framesSent.inc();
    sub.sendPresence(frame);
  }

  private forget(sub: Subscriber, name: string): void {
    const set = this.byName.get(name);
    set?.delete(sub);
    if (set?.size === 0) this.byName.delete(name);
    this.bindings.unwatch(name);
  }
}
