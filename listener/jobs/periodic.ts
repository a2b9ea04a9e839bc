import type { Logger } from '../../common/log.ts';

/**
 * Runs `task` every `intervalMs` (never overlapping itself) until stopped. Failures are logged
 * and retried on the next tick: a periodic job must survive its database restarting.
 */
export function every(intervalMs: number, name: string, log: Logger, task: () => Promise<unknown>) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = () => {
    running = task()
      .then(
        () => undefined,
        (err: unknown) => log.warn({ err, job: name }, 'periodic job failed'),
      )
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, intervalMs).unref();
      });
  };
  timer = setTimeout(tick, intervalMs).unref();
  return {
    /** Stops scheduling and waits for a run in progress. */
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
