import type { Db } from '../../common/db/index.ts';
import type { Logger } from '../../common/log.ts';
import type { PresenceMetrics } from '../../common/metrics.ts';
import type { PresenceChange } from '../../common/queue/messages.ts';
import type { ListenerConfig } from '../config.ts';
import { overdueOffline, type Removal, settlePresence } from './state.ts';

export interface AnnouncerOptions {
  db: Db;
  config: Pick<ListenerConfig, 'PRESENCE_GRACE_MS' | 'PRESENCE_EXPIRY_MS'>;
  /** Publishes a settled transition to every listener (the live bus). */
  publish(change: PresenceChange): Promise<void>;
  metrics: PresenceMetrics;
  log: Logger;
}

/**
 * Decides and announces this listener's share of presence transitions: after its streams open or
 * close, and for what its sweep finds (expired streams of a dead listener, graces whose closing
 * listener died). The decision is PostgreSQL's (settlePresence), so whichever listener's call
 * sees the transition publishes it, once.
 */
export class PresenceAnnouncer {
  private readonly opts: AnnouncerOptions;
  /** Users whose grace is running here: settled again when it ends. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(opts: AnnouncerOptions) {
    this.opts = opts;
  }

  /**
   * Settles one user's presence after their stream rows changed, or deleting `remove` first (see
   * settlePresence); never throws.
   */
  settle(userId: string, remove?: Removal, graceMs = this.opts.config.PRESENCE_GRACE_MS): Promise<void> {
    if (this.closed) return Promise.resolve();
    const run = this.run(userId, graceMs, remove).finally(() => this.inFlight.delete(run));
    this.inFlight.add(run);
    return run;
  }

  /**
   * The sweep's part: users with stale streams (their listener stopped beating, so no grace is due
   * any more; settling deletes those rows) and users whose grace ended without their closing
   * listener settling it.
   */
  async sweep(expiredUsers: string[]): Promise<void> {
    const overdue = await overdueOffline(this.opts.db, this.opts.config.PRESENCE_GRACE_MS);
    await Promise.all([
      ...expiredUsers.map((u) => this.settle(u, 'stale', 0)),
      ...overdue.filter((u) => !expiredUsers.includes(u)).map((u) => this.settle(u)),
    ]);
  }

  /** Stops the grace timers (another listener's sweep settles those users) and waits for work in flight. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.all(this.inFlight);
  }

  private async run(userId: string, graceMs: number, remove?: Removal): Promise<void> {
    const { db, config, log, metrics } = this.opts;
    try {
      const settled = await settlePresence(db, userId, graceMs, config.PRESENCE_EXPIRY_MS, remove);
      if (settled.kind === 'pending') {
        if (this.timers.has(userId) || this.closed) return;
        const timer = setTimeout(
          () => {
            this.timers.delete(userId);
            void this.settle(userId);
          },
          Math.max(0, settled.inMs),
        );
        timer.unref();
        this.timers.set(userId, timer);
        return;
      }
      if (settled.kind !== 'changed') return;
      const { change } = settled;
      metrics.transitionsPublished.inc({ state: change.online ? 'online' : 'offline' });
      await this.opts.publish(change).catch((err: unknown) => {
        // Listeners re-read every subscription when their bus reconnects; until then this change is lost.
        log.warn({ err, user_id: userId, online: change.online }, 'presence change not published');
      });
    } catch (err) {
      // Nothing changed (one transaction): a removed stream's row expires and a sweep settles it.
      log.warn({ err, user_id: userId }, 'presence not settled');
    }
  }
}
