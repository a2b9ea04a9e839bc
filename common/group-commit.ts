/** A call waiting in a group commit; the run it goes into gives it its own answer. */
export interface Waiting<I, R> {
  input: I;
  resolve(result: R): void;
  reject(err: unknown): void;
}

/**
 * Group commit: a call made while `inFlight` runs are going waits for the next run, which takes
 * what arrived meanwhile (at most `max`, in call order); a call that finds a slot free waits
 * `lingerMs` (0: one turn of the event loop) to take along what comes meanwhile. With `busyOnly`
 * it lingers only while calls keep coming (the one before came less than `lingerMs` earlier): a
 * steady stream gets fuller runs, and a call after a quiet spell starts at once.
 * `run` answers every call it was given; if it throws, the calls it had not answered fail with
 * that error.
 */
export function groupCommit<I, R>(
  run: (batch: Waiting<I, R>[]) => Promise<void>,
  { inFlight = 1, max = Number.POSITIVE_INFINITY, lingerMs = 0, busyOnly = false } = {},
): (input: I) => Promise<R> {
  let queue: Waiting<I, R>[] = [];
  let running = 0;
  let lastCall = Number.NEGATIVE_INFINITY;
  function pump(): void {
    while (queue.length && running < inFlight) {
      const batch = queue.slice(0, max);
      queue = queue.slice(batch.length);
      running++;
      run(batch)
        .catch((err: unknown) => {
          for (const w of batch) w.reject(err);
        })
        .finally(() => {
          running--;
          pump();
        });
    }
  }
  return (input) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ input, resolve, reject });
      const now = performance.now();
      const lull = busyOnly && now - lastCall >= lingerMs;
      lastCall = now;
      if (queue.length === 1 && running < inFlight) {
        if (lingerMs > 0 && !lull) setTimeout(pump, lingerMs);
        else setImmediate(pump);
      }
    });
}
