/**
 * Caps the pushes in flight per origin in this process. Without it one slow receiver (answering
 * only at the 10 s timeout) would hold every prefetch slot and stall pushes to everyone else;
 * with it, deliveries for a busy origin are deferred (not attempted, not counted) and the slots
 * stay free for other origins.
 */
export interface OriginGate {
  tryAcquire(origin: string): boolean;
  release(origin: string): void;
}

export function originGate(limit: number): OriginGate {
  const inFlight = new Map<string, number>();
  return {
    tryAcquire(origin) {
      const n = inFlight.get(origin) ?? 0;
      if (n >= limit) return false;
      inFlight.set(origin, n + 1);
      return true;
    },
    release(origin) {
      const n = (inFlight.get(origin) ?? 1) - 1;
      if (n > 0) inFlight.set(origin, n);
      else inFlight.delete(origin);
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
