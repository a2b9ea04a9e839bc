import type { Q } from './index.ts';

/** Seconds the username must wait, or 0 when it may try again. */
export async function loginLockedFor(q: Q, username: string, maxFailures: number, lockSeconds: number) {
  const row = await q('login_failures')
    .where({ username })
    .andWhere('failures', '>=', maxFailures)
    .andWhere('window_start', '>', q.raw(`now() - make_interval(secs => ?)`, [lockSeconds]))
    .first<{ window_start: Date } | undefined>();
  if (!row) return 0;
  return Math.max(1, Math.ceil((row.window_start.getTime() + lockSeconds * 1000 - Date.now()) / 1000));
}

/** Counts a failure; the window restarts once it has passed. */
export async function recordLoginFailure(q: Q, username: string, lockSeconds: number): Promise<void> {
  await q.raw(
    `INSERT INTO login_failures (username, failures) VALUES (?, 1)
     ON CONFLICT (username) DO UPDATE SET
       failures = CASE WHEN login_failures.window_start > now() - make_interval(secs => ?)
                       THEN login_failures.failures + 1 ELSE 1 END,
       window_start = CASE WHEN login_failures.window_start > now() - make_interval(secs => ?)
                       THEN login_failures.window_start ELSE now() END`,
    [username, lockSeconds, lockSeconds],
  );
}

export async function clearLoginFailures(q: Q, username: string): Promise<void> {
  await q('login_failures').where({ username }).delete();
}

export async function deleteStaleLoginFailures(q: Q, lockSeconds: number): Promise<number> {
  return q('login_failures')
    .where('window_start', '<', q.raw(`now() - make_interval(secs => ?)`, [lockSeconds]))
    .delete();
}
