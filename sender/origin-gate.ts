/**
 * Caps the pushes in flight per origin in this process. Without it one slow receiver (answering
 * only at the 10 s timeout) would hold every prefetch slot and stall pushes to everyone else.
 * A delivery for an origin at its cap waits here for the next free slot when the origin is
 * quick (its oldest push in flight started less than `slowMs` ago) and fewer than `maxWaiting`
 * deliveries wait for that origin, for at most `waitMs`: a burst to one receiver is served as its
 * pushes end, instead of a deferral that costs at least the shortest retry tier. A slow origin's
 * deliveries are deferred at once (`acquire` answers false) and keep the prefetch slots free for
 * other origins: an origin that turns slow holds at most `limit + maxWaiting` of them, for at
 * most `waitMs`. (The cap on waiting is per origin: a global one deferred deliveries to quick
 * receivers as soon as a CPU stall let a few of them queue up at once, adding a retry tier's
 * second or more to their latency.)
 */
export interface OriginGate {
  acquire(origin: string): Promise<boolean>;
  release(origin: string): void;
  /**
   * How long a delivery deferred now should stay away: the time this origin needs to work
   * through what was deferred for it in the last minute at its pace (pushes in flight ÷ their
   * duration, or the age of its oldest push still in flight when that is longer). A receiver that
   * never answers, with thousands queued, then sees its backlog spread over minutes instead of
   * coming back in waves that hold up everyone else's pushes.
   */
  deferFor(origin: string): number;
}

interface Pace {
  /** Start times of the pushes in flight, oldest first. */
  started: number[];
  /** Moving average of push durations (ms). */
  avgMs: number;
  deferred: number;
  since: number;
}

const PACE_WINDOW_MS = 60_000;

export function originGate(
  limit: number,
  opts: { maxWaiting: number; waitMs: number; slowMs: number },
): OriginGate {
  const inFlight = new Map<string, number>();
  const waiting = new Map<string, ((got: boolean) => void)[]>();
  const paces = new Map<string, Pace>();
  const pace = (origin: string): Pace => {
    const p = paces.get(origin) ?? { started: [], avgMs: 0, deferred: 0, since: Date.now() };
    paces.set(origin, p);
    return p;
  };
  const started = (origin: string) => pace(origin).started.push(Date.now());
  return {
    deferFor(origin) {
      const p = pace(origin);
      const now = Date.now();
      if (now - p.since > PACE_WINDOW_MS) {
        p.deferred = 0;
        p.since = now;
      }
      p.deferred++;
      const oldest = p.started[0];
      const perPush = Math.max(p.avgMs, oldest === undefined ? 0 : now - oldest);
      return Math.round((p.deferred * perPush) / limit);
    },
    acquire(origin) {
      const n = inFlight.get(origin) ?? 0;
      if (n < limit) {
        inFlight.set(origin, n + 1);
        started(origin);
        return Promise.resolve(true);
      }
      const queue = waiting.get(origin) ?? [];
      const oldest = paces.get(origin)?.started[0] ?? Date.now();
      if (queue.length >= opts.maxWaiting || Date.now() - oldest >= opts.slowMs)
        return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const settle = (got: boolean) => {
          clearTimeout(timer);
          resolve(got);
        };
        const timer = setTimeout(() => {
          const q = waiting.get(origin) ?? [];
          q.splice(q.indexOf(settle), 1);
          if (!q.length) waiting.delete(origin);
          settle(false);
        }, opts.waitMs);
        queue.push(settle);
        waiting.set(origin, queue);
      });
    },
    release(origin) {
      const p = pace(origin);
      const began = p.started.shift();
      if (began !== undefined)
        p.avgMs = p.avgMs ? 0.8 * p.avgMs + 0.2 * (Date.now() - began) : Date.now() - began;
      const queue = waiting.get(origin);
      const next = queue?.shift();
      if (queue && !queue.length) waiting.delete(origin);
      // The slot passes to the next waiter as it is.
      if (next) {
        started(origin);
        return next(true);
      }
      const n = (inFlight.get(origin) ?? 1) - 1;
      if (n > 0) inFlight.set(origin, n);
      else {
        inFlight.delete(origin);
        if (!p.deferred) paces.delete(origin);
      }
    },
  };
}

/** The pool key undici uses for an address; unparsable addresses get their own key (refused later). */
export function originOf(address: string): string {
  try {
    return new URL(address).origin;
  } catch {
    return address;
  }
}
