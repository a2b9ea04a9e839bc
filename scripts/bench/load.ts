import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Accepted, ChildReport, DoneReport, LoadShape, LoadTarget } from './protocol.ts';

const CHILD = fileURLToPath(new URL('./loadgen.ts', import.meta.url));

export interface LoadResult extends Omit<DoneReport, 'type' | 'accepted'> {
  pid: number;
}

export interface LoadHooks {
  /** Accepted sends, in batches, as the child reports them. */
  onAccepted?(batch: Accepted[]): void;
  onProgress?(p: { ok: number; errors: number; inFlight: number }): void;
}

/**
 * Runs one bounded load in a fresh child process and resolves with its summary. The child is
 * killed (by its PID) if it outlives its duration by more than a minute.
 */
export function runLoad(target: LoadTarget, shape: LoadShape, hooks: LoadHooks = {}): Promise<LoadResult> {
  const child = fork(CHILD, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pid = child.pid ?? -1;
  return new Promise((resolve, reject) => {
    let done: LoadResult | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), shape.durationMs + 60_000);
    child.on('message', (m: ChildReport) => {
      if (m.accepted.length) hooks.onAccepted?.(m.accepted);
      if (m.type === 'progress') hooks.onProgress?.(m);
      else {
        const { type: _, accepted: __, ...rest } = m;
        done = { ...rest, pid };
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (done) resolve(done);
      else reject(new Error(`load generator exited (${signal ?? code}) without a result`));
    });
    child.send({ type: 'start', target, shape });
  });
}
